import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { gunzipSync } from "node:zlib";
import {
  FASHION_CLASSES,
  FASHION_MNIST_DIR,
  fashionMnistDataset,
} from "../../../src/data/datasets/fashion-mnist.js";
import { parseIdxImages, parseIdxLabels } from "../../../src/data/datasets/idx.js";
import { DIGIT_WORDS, mnistDataDir, mnistDataset } from "../../../src/data/datasets/mnist.js";
import { DatasetUnavailableError } from "../../../src/data/datasets/types.js";

/** Returns the first `n` labels of an IDX label file, read straight from its bytes. */
function firstLabels(bytes: Uint8Array, n: number): number[] {
  assert.equal(new DataView(bytes.buffer, bytes.byteOffset).getUint32(0), 0x801);
  return [...bytes.subarray(8, 8 + n)];
}

describe("mnist", () => {
  const dataset = mnistDataset();

  it("has 60,000 train and 10,000 test 28×28 grey images", () => {
    assert.equal(dataset.split("train").size, 60000);
    assert.equal(dataset.split("test").size, 10000);
    const { image } = dataset.split("train").get(0);
    assert.deepEqual([image.width, image.height, image.channels], [28, 28, 1]);
  });

  it("matches the labels and pixels in the IDX files", () => {
    const dir = mnistDataDir();
    const trainLabels = readFileSync(join(dir, "train-labels-idx1-ubyte"));
    const testLabels = readFileSync(join(dir, "t10k-labels-idx1-ubyte"));
    const known = firstLabels(trainLabels, 10);
    assert.deepEqual(known, [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]); // the well-known first digits
    assert.deepEqual(firstLabels(testLabels, 10), [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
    const train = dataset.split("train");
    const test = dataset.split("test");
    known.forEach((digit, i) => {
      assert.equal(train.get(i).labels.digit, digit);
    });
    assert.equal(test.get(0).labels.digit, 7);
    assert.equal(train.get(59999).labels.digit, trainLabels[8 + 59999]);
    // Pixels of image 1 straight from the file (16-byte header, 784 bytes per image).
    const images = readFileSync(join(dir, "train-images-idx3-ubyte"));
    assert.deepEqual(
      train.get(1).image.data,
      new Uint8Array(images.subarray(16 + 784, 16 + 2 * 784)),
    );
  });

  it("captions digits in words", () => {
    const train = dataset.split("train");
    assert.equal(train.get(0).caption, "the digit five");
    assert.equal(train.get(1).caption, "the digit zero");
    assert.equal(dataset.split("test").get(0).caption, "the digit seven");
    assert.equal(DIGIT_WORDS.length, 10);
  });

  it("has sane pixel statistics (dark background, mean near 33)", () => {
    const train = dataset.split("train");
    let sum = 0;
    let corners = 0;
    for (let i = 0; i < 1000; i++) {
      const { data } = train.get(i).image;
      for (const v of data) sum += v;
      corners += data[0]! + data[27]! + data[28 * 27]! + data[28 * 28 - 1]!;
    }
    const mean = sum / (1000 * 784);
    assert.ok(mean > 25 && mean < 42, `mean ${mean}`);
    assert.equal(corners, 0);
  });

  it("pads to 32×32 with black, keeping the digit centred", () => {
    const padded = mnistDataset({ imageSize: 32 }).split("train").get(0).image;
    const plain = dataset.split("train").get(0).image;
    assert.equal(padded.width, 32);
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 28; x++)
        assert.equal(padded.data[(y + 2) * 32 + x + 2], plain.data[y * 28 + x]);
    }
    assert.throws(() => mnistDataset({ imageSize: 20 }), /imageSize must be an integer in \[28/);
  });

  it("returns copies: changing an image does not change the dataset", () => {
    const train = dataset.split("train");
    const first = train.get(0).image;
    first.data.fill(1);
    assert.notEqual(train.get(0).image.data[0], 1);
  });
});

describe("fashion-mnist", () => {
  const installed = existsSync(join(FASHION_MNIST_DIR, "train-images-idx3-ubyte.gz"));

  it("has 60,000 train and 10,000 test images whose labels match the IDX files", {
    skip: !installed,
  }, () => {
    const dataset = fashionMnistDataset();
    const train = dataset.split("train");
    const test = dataset.split("test");
    assert.equal(train.size, 60000);
    assert.equal(test.size, 10000);
    const trainLabels = gunzipSync(
      readFileSync(join(FASHION_MNIST_DIR, "train-labels-idx1-ubyte.gz")),
    );
    const testLabels = gunzipSync(
      readFileSync(join(FASHION_MNIST_DIR, "t10k-labels-idx1-ubyte.gz")),
    );
    const known = firstLabels(trainLabels, 10);
    assert.deepEqual(known, [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
    known.forEach((label, i) => {
      assert.equal(train.get(i).labels.class, label);
    });
    assert.equal(test.get(0).labels.class, testLabels[8]);
    assert.equal(train.get(0).labels.name, "Ankle boot");
  });

  it("captions clothing in plain English", { skip: !installed }, () => {
    const train = fashionMnistDataset().split("train");
    assert.equal(train.get(0).caption, "a photo of an ankle boot");
    assert.equal(train.get(1).caption, "a photo of a t-shirt");
    assert.equal(train.get(3).caption, "a photo of a dress");
    assert.equal(FASHION_CLASSES.length, 10);
  });

  it("has sane pixel statistics (mean near 73)", { skip: !installed }, () => {
    const train = fashionMnistDataset().split("train");
    let sum = 0;
    for (let i = 0; i < 1000; i++) for (const v of train.get(i).image.data) sum += v;
    const mean = sum / (1000 * 784);
    assert.ok(mean > 60 && mean < 85, `mean ${mean}`);
  });

  it("says how to install the Debian package when the files are missing", () => {
    const dataset = fashionMnistDataset({ dir: join(tmpdir(), "no-such-fashion-mnist") });
    assert.throws(
      () => dataset.split("train"),
      (err: unknown) => {
        assert.ok(err instanceof DatasetUnavailableError);
        assert.match(err.message, /^fashion-mnist: .*train-images-idx3-ubyte\.gz not found\. /);
        assert.match(err.message, /apt-get install dataset-fashion-mnist/);
        return true;
      },
    );
  });
});

describe("IDX parsing", () => {
  it("rejects bad magic numbers and lengths, naming the source", () => {
    const header = (magic: number, ...dims: number[]) => {
      const bytes = new Uint8Array(4 + 4 * dims.length);
      const view = new DataView(bytes.buffer);
      view.setUint32(0, magic);
      dims.forEach((d, i) => {
        view.setUint32(4 + 4 * i, d);
      });
      return bytes;
    };
    assert.throws(
      () => parseIdxImages(header(0x801, 1, 1, 1), "x.idx"),
      /x\.idx: not an IDX image file/,
    );
    assert.throws(
      () => parseIdxImages(header(0x803, 2, 2, 2), "x.idx"),
      /x\.idx: 16 bytes, header promises 24/,
    );
    assert.throws(() => parseIdxLabels(header(0x803, 1), "y.idx"), /y\.idx: not an IDX label file/);
    assert.throws(() => parseIdxLabels(new Uint8Array(3), "y.idx"), /too short/);
    const ok = new Uint8Array([...header(0x803, 1, 2, 2), 1, 2, 3, 4]);
    assert.deepEqual(parseIdxImages(ok, "ok").rows, 2);
  });
});
