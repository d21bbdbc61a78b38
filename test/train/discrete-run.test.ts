// A discrete-token (Chameleon-style) run end to end: VQ tokenizer, training, resume, and the
// same pipeline calls and metrics as Transfusion.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { getDataset } from "../../src/data/datasets/index.js";
import { evaluatePipeline } from "../../src/eval/evaluate.js";
import { TransfusionPipeline } from "../../src/generate/pipeline.js";
import { VqVae } from "../../src/model/vqvae.js";
import { type RunEvent, type RunOptions, runTraining } from "../../src/train/run.js";

function options(out: string, steps: number, events: RunEvent[]): RunOptions {
  return {
    data: "shapes",
    shapesDifficulty: "easy",
    maxImages: 48,
    out,
    preset: "tiny",
    model: { dim: 32, layers: 1, heads: 2, mlpHidden: 64, imageCodes: 16 },
    seqLen: 48,
    rows: 2,
    vocabSize: 300,
    textCorpus: null,
    vqvae: { steps: 3, batchSize: 4, config: { baseChannels: 8, groups: 4, levels: 3 } },
    train: { steps, checkpointEvery: 2, warmupSteps: 1 },
    sampleEvery: 0,
    sampleCaptions: ["a large red circle"],
    onEvent: (e) => events.push(e),
  };
}

test("a discrete-token run trains, resumes, draws, captions and evaluates like Transfusion", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tf-discrete-"));
  const out = join(dir, "run");
  const events: RunEvent[] = [];
  const first = await runTraining(options(out, 2, events));
  assert.equal(first.steps, 2);
  assert.ok(events.some((e) => e.kind === "stage" && /VQ image tokenizer/.test(e.message)));
  assert.ok(existsSync(join(out, "checkpoint", "vqvae.safetensors")));
  const config = JSON.parse(readFileSync(join(out, "checkpoint", "config.json"), "utf8"));
  assert.equal(config.model.imageCodes, 16);
  assert.equal(config.model.latentSize, 4); // 32 px, 3 levels: a 4×4 grid of codes
  assert.equal(config.model.vocab, 300 + 16);

  const again: RunEvent[] = [];
  const second = await runTraining(options(out, 3, again));
  assert.equal(second.steps, 3);
  assert.ok(again.some((e) => e.kind === "stage" && /resuming from step 2/.test(e.message)));

  const p = TransfusionPipeline.load(out + "/checkpoint");
  assert.ok(p.vae instanceof VqVae);
  const { images } = await p.textToImage(["a large red circle", ""], { guidanceScale: 2, seed: 3 });
  assert.equal(images.length, 2);
  assert.equal(images[0]!.width, 32);
  // Same seed, same images: codes are drawn from per-sample streams.
  const again2 = await p.textToImage(["a large red circle"], { guidanceScale: 2, seed: 3 });
  assert.deepEqual(again2.images[0]!.data, images[0]!.data);
  const captions = await p.caption(images, 4);
  assert.equal(captions.length, 2);

  const ds = await getDataset("shapes", { imageSize: 32, difficulty: "easy" });
  const ev = await evaluatePipeline(p, ds, { count: 4, textCorpus: null, classifier: null });
  assert.ok(ev.checkerAccuracy !== null && ev.checkerAccuracy >= 0);
  assert.ok(Number.isFinite(ev.captionLoss!));
  // An untrained model spreads its guess over the 16 codes: about ln 16 nats per code.
  assert.ok(ev.imageLoss! > 1 && ev.imageLoss! < 6, `image loss ${ev.imageLoss}`);
});
