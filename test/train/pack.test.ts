// `transfusion pack`: the batches a run would train on, written to shards for another trainer.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { TransfusionPipeline } from "../../src/generate/pipeline.js";
import { Rng } from "../../src/tensor/rng.js";
import { readSafetensorsFile } from "../../src/tensor/safetensors.js";
import { prepareRun } from "../../src/train/run.js";
import { type PackManifest, packRun } from "../../src/train/run-pack.js";
import { stepSeed } from "../../src/train/trainer.js";
import { shapesDocsFile, tinyRunOptions } from "../helpers.js";

const root = mkdtempSync(join(tmpdir(), "tf-pack-"));

test("pack writes the batches the run draws, a step-0 checkpoint and a manifest; packing again keeps them", async () => {
  const file = await shapesDocsFile(join(root, "data"), 10);
  const out = join(root, "pack");
  const o = { ...tinyRunOptions(file, out, 5), shardSize: 2 };
  const r = await packRun(o);
  assert.equal(r.steps, 5);
  assert.equal(r.shards.length, 3);
  assert.equal(r.kept, 0);

  const manifest = JSON.parse(readFileSync(join(out, "pack.json"), "utf8")) as PackManifest;
  assert.equal(manifest.format, "transfusion-pack");
  assert.deepEqual(
    manifest.shards.map((s) => [s.first, s.count]),
    [
      [0, 2],
      [2, 2],
      [4, 1],
    ],
  );
  // The step-0 checkpoint loads like any checkpoint.
  const pipe = TransfusionPipeline.load(join(out, "checkpoint"));
  const C = pipe.model.config;
  assert.deepEqual(manifest.latentShape, [C.latentChannels, C.latentSize, C.latentSize]);

  // Every step's tensors are the batch prepareRun draws for that step, bit for bit.
  const prepared = await prepareRun(tinyRunOptions(file, out, 5));
  const caps = new Set<number>();
  for (const { file: f, first, count } of manifest.shards) {
    const shard = readSafetensorsFile(join(out, f)).tensors;
    for (let step = first; step < first + count; step++) {
      const want = prepared.batchFor(new Rng(stepSeed(manifest.seed, step, 1)));
      const L = want.layout;
      assert.deepEqual(shard[`${step}.tokens`]!.shape, [L.batch, L.seqLen]);
      assert.deepEqual(Array.from(shard[`${step}.tokens`]!.data), Array.from(L.tokens));
      assert.deepEqual(Array.from(shard[`${step}.text_targets`]!.data), Array.from(L.textTargets));
      assert.deepEqual(Array.from(shard[`${step}.doc_ids`]!.data), Array.from(L.docIds));
      assert.deepEqual(Array.from(shard[`${step}.positions`]!.data), Array.from(L.positions));
      assert.deepEqual(Array.from(shard[`${step}.latents`]!.data), Array.from(want.latents));
      const images = shard[`${step}.images`]!;
      assert.deepEqual(images.shape, [L.images.length, 6]);
      L.images.forEach((img, k) => {
        const row = Array.from(images.data.subarray(k * 6, k * 6 + 6));
        assert.deepEqual(row.slice(0, 5), [img.row, img.start, img.gridH, img.gridW, 1]);
        // The timestep itself is left to the trainer; its bound is the noise cap or T.
        assert.ok(img.t < row[5]!, `image ${k} of step ${step}: t ${img.t} ≥ tMax ${row[5]}`);
        // An image-first (captioning) image opens its document (BOI at position 0) and has
        // caption text after its EOI; its bound is the noise cap. Every other image has T.
        const first = img.row * L.seqLen + img.start;
        const afterEoi = L.tokens[first + img.gridH * img.gridW + 1];
        const imageFirst = L.positions[first] === 1 && afterEoi !== prepared.tokenizer.eodId;
        assert.equal(row[5], imageFirst ? 500 : 1000, `image ${k} of step ${step}`);
        caps.add(row[5]!);
      });
    }
  }
  assert.deepEqual([...caps].sort(), [1000, 500]);

  // Packing again with the same options keeps every shard.
  const again = await packRun(o);
  assert.equal(again.kept, 3);
});
