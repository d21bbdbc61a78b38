import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DATASET_NAMES, DEFAULT_DATASET, getDataset } from "../../../src/data/datasets/index.js";

describe("dataset registry", () => {
  it("defaults to shapes and passes options through", async () => {
    assert.equal(DEFAULT_DATASET, "shapes");
    const ds = await getDataset(undefined, { imageSize: 24, seed: 3 });
    assert.equal(ds.name, "shapes");
    assert.equal(ds.imageSize, 24);
    assert.equal(ds.split("train").get(0).image.width, 24);
  });

  it("knows every dataset name and gives the image geometry it promises", async () => {
    assert.deepEqual([...DATASET_NAMES], ["shapes", "mnist", "fashion-mnist", "emoji"]);
    const mnist = await getDataset("mnist", { imageSize: 32 });
    assert.equal(mnist.channels, 1);
    assert.equal(mnist.imageSize, 32);
    assert.equal(mnist.split("test").get(0).image.width, 32);
  });

  it("rejects an unknown name with the list of known ones", async () => {
    await assert.rejects(
      getDataset("cifar10"),
      /unknown dataset 'cifar10' \(expected one of: shapes, mnist, fashion-mnist, emoji\)/,
    );
  });
});
