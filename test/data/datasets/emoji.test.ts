import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  emojiCaption,
  emojiCatalogue,
  emojiDataset,
  emojiSplitOf,
} from "../../../src/data/datasets/emoji.js";
import type { ImageTextDataset } from "../../../src/data/datasets/types.js";

let cacheDir: string;
let dataset: ImageTextDataset;
let firstLoadMs = 0;

before(async () => {
  cacheDir = await mkdtemp(join(tmpdir(), "tf-emoji-"));
  const start = performance.now();
  dataset = await emojiDataset({ cacheDir });
  firstLoadMs = performance.now() - start;
  console.log(`emoji: first load (decode 1,911 PNGs, write cache) ${Math.round(firstLoadMs)} ms`);
});
after(async () => {
  await rm(cacheDir, { recursive: true, force: true });
});

describe("emoji dataset", () => {
  it("holds the 1,911 base emoji split about 90/10, deterministically", () => {
    const train = dataset.split("train").size;
    const test = dataset.split("test").size;
    assert.equal(train + test, 1911);
    assert.ok(test > 150 && test < 230, `test size ${test}`);
    assert.equal(emojiSplitOf("grinning"), emojiSplitOf("grinning"));
    assert.equal(dataset.licence.includes("Apache-2.0") && dataset.licence.includes("MIT"), true);
  });

  it("captions from the name in lowercase words and labels name and category", () => {
    const all = [...Array(dataset.split("train").size).keys()].map((i) =>
      dataset.split("train").get(i),
    );
    all.push(
      ...[...Array(dataset.split("test").size).keys()].map((i) => dataset.split("test").get(i)),
    );
    const grinning = all.find((e) => e.labels.shortName === "grinning");
    assert.ok(grinning);
    assert.equal(grinning.caption, "grinning face");
    assert.equal(grinning.labels.category, "Smileys & Emotion");
    assert.equal(grinning.labels.name, "GRINNING FACE");
    assert.ok(all.some((e) => e.caption === "cat face"));
    assert.ok(all.every((e) => e.caption.length > 0 && e.caption === e.caption.toLowerCase()));
    assert.equal(emojiCaption("Antigua & Barbuda Flag"), "antigua and barbuda flag");
    assert.equal(emojiCaption("FAMILY: MAN, BOY"), "family man boy");
  });

  it("decodes 32×32 RGB on white with plausible pixels", () => {
    const { image } = dataset.split("train").get(0);
    assert.deepEqual([image.width, image.height, image.channels], [32, 32, 3]);
    assert.deepEqual([...image.data.subarray(0, 3)], [255, 255, 255]); // transparent corner → white
    let sum = 0;
    for (const v of image.data) sum += v;
    const mean = sum / image.data.length;
    assert.ok(mean > 100 && mean < 250, `mean ${mean}`);
  });

  it("writes a disk cache of exactly the decoded pixels", async () => {
    const { version, entries } = emojiCatalogue();
    const cache = await readFile(
      join(cacheDir, `emoji-google-${version}-32px-${entries.length}.bin`),
    );
    assert.equal(cache.length, 1911 * 32 * 32 * 3);
    const first = entries.findIndex((e) => emojiSplitOf(e.shortName) === "train");
    assert.deepEqual(
      new Uint8Array(cache.subarray(first * 3072, (first + 1) * 3072)),
      dataset.split("train").get(0).image.data,
    );
  });

  it("loads again from memory without decoding", async () => {
    const start = performance.now();
    const again = await emojiDataset({ cacheDir });
    assert.ok(performance.now() - start < Math.max(500, firstLoadMs / 4));
    assert.deepEqual(again.split("test").get(5), dataset.split("test").get(5));
  });
});
