// A whole run on a JSONL document file: train, resume, load, generate, caption; bad checkpoints.
import assert from "node:assert/strict";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { getDataset } from "../../src/data/datasets/index.js";
import { type Document, writeDocuments } from "../../src/data/documents.js";
import { TransfusionPipeline } from "../../src/generate/pipeline.js";
import { type RunEvent, runTraining } from "../../src/train/run.js";
import { tinyRunOptions } from "../helpers.js";

async function docsFile(dir: string): Promise<string> {
  const ds = await getDataset("shapes");
  const split = ds.split("train");
  const docs: Document[] = [];
  for (let i = 0; i < 12; i++) {
    const ex = split.get(i);
    // Mixed layouts: caption first, image first, and two images in one document.
    if (i % 3 === 0) docs.push({ parts: [{ text: ex.caption }, { image: ex.image }] });
    else if (i % 3 === 1) docs.push({ parts: [{ image: ex.image }, { text: ex.caption }] });
    else
      docs.push({
        parts: [{ text: "two:" }, { image: ex.image }, { image: split.get(i + 100).image }],
      });
  }
  const file = join(dir, "docs.jsonl");
  await writeDocuments(file, docs, join(dir, "images"));
  return file;
}

const options = tinyRunOptions;

test("train on a JSONL file, resume, then generate and caption from the checkpoint", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tf-run-"));
  const file = await docsFile(dir);
  const out = join(dir, "run");
  const events: RunEvent[] = [];
  const first = await runTraining(options(file, out, 3, events));
  assert.equal(first.steps, 3);
  // Long stages report progress: the tokenizer's merges and the images encoded to latents.
  for (const stage of ["tokenizer", "encode"]) {
    const p = events.filter((e) => e.kind === "progress" && e.stage === stage);
    assert.ok(p.length > 0, `no ${stage} progress`);
    const last = p[p.length - 1]!;
    assert.ok(last.kind === "progress" && last.done === last.total);
  }
  assert.ok(existsSync(join(out, "checkpoint", "model.safetensors")));
  assert.ok(existsSync(join(out, "loss.png")));
  assert.equal(readFileSync(join(out, "metrics.jsonl"), "utf8").trim().split("\n").length, 3);

  const again: RunEvent[] = [];
  const second = await runTraining(options(file, out, 5, again));
  assert.equal(second.steps, 5);
  assert.ok(again.some((e) => e.kind === "stage" && /resuming from step 3/.test(e.message)));
  assert.equal(readFileSync(join(out, "metrics.jsonl"), "utf8").trim().split("\n").length, 5);

  const p = TransfusionPipeline.load(join(out, "checkpoint"));
  const { images } = await p.textToImage(["a large red circle", ""], {
    steps: 3,
    guidanceScale: 2,
  });
  assert.equal(images.length, 2);
  assert.equal(images[0]!.width, 32);
  await assert.rejects(
    () => p.textToImage(["a large red circle ".repeat(40)]),
    /longer than the context of 64/,
  );
  const captions = await p.caption(images, 4);
  assert.equal(captions.length, 2);
  assert.equal(typeof captions[0], "string");
});

test("corrupt, wrong-version and missing checkpoints end with clear messages", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tf-bad-"));
  const file = await docsFile(dir);
  const out = join(dir, "run");
  await runTraining(options(file, out, 2, []));
  const ckpt = join(out, "checkpoint");
  assert.throws(() => TransfusionPipeline.load(join(dir, "nothing")), /no checkpoint here/);

  const cfgPath = join(ckpt, "config.json");
  const cfg = JSON.parse(readFileSync(cfgPath, "utf8"));
  writeFileSync(cfgPath, JSON.stringify({ ...cfg, version: 99 }));
  assert.throws(() => TransfusionPipeline.load(ckpt), /checkpoint version 99 is not supported/);
  writeFileSync(cfgPath, JSON.stringify(cfg));

  const weights = join(ckpt, "model.safetensors");
  const bytes = readFileSync(weights);
  writeFileSync(weights, bytes.subarray(0, bytes.length - 100));
  assert.throws(() => TransfusionPipeline.load(ckpt), /model\.safetensors/);
});

test("an unwritable output folder fails with a message naming it", {
  skip: process.getuid?.() === 0 ? "root ignores folder permissions" : false,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), "tf-ro-"));
  const file = await docsFile(dir);
  const ro = join(dir, "ro");
  mkdirSync(ro);
  chmodSync(ro, 0o500);
  await assert.rejects(runTraining(options(file, join(ro, "run"), 1, [])), /ro/);
});
