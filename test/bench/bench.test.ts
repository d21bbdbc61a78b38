// The train and sample benches at a tiny shape on the js backend: every reported figure is
// present, finite and positive, and the figures agree with each other. Speed is not asserted.
import assert from "node:assert/strict";
import { test } from "node:test";
import { trainStepFlops } from "../../src/bench/flops.js";
import { PYTORCH_PORT_SAMPLE, runSampleBench } from "../../src/bench/sample.js";
import {
  benchConfig,
  PYTORCH_PORT_TRAIN,
  runTrainBench,
  TRAIN_WORKLOADS,
  trainBenchBatch,
} from "../../src/bench/train.js";
import { DEMO_RUN } from "../../src/cli/demo.js";
import { cosineSchedule } from "../../src/diffusion/schedule.js";
import { makeConfig, patchesPerImage } from "../../src/model/config.js";
import { Rng } from "../../src/tensor/rng.js";
import { withBackendAsync } from "../helpers.js";

const TINY = { dim: 32, layers: 1, heads: 2, vocab: 64, latentSize: 4 };

/** Asserts obj[key] is a finite positive number for every key. */
function positive(obj: object, keys: string[], where: string): void {
  const o = obj as Record<string, unknown>;
  for (const k of keys) {
    const v = o[k];
    assert.equal(typeof v, "number", `${where}.${k} is missing`);
    assert.ok(
      Number.isFinite(v) && (v as number) > 0,
      `${where}.${k} = ${v} is not finite and positive`,
    );
  }
}

/** Asserts a ≈ b to a relative tolerance. */
function close(a: number, b: number, what: string, rtol = 1e-9): void {
  assert.ok(Math.abs(a - b) <= rtol * Math.max(Math.abs(a), Math.abs(b)), `${what}: ${a} vs ${b}`);
}

test("the full train workload is 8 rows of exactly 130 positions with no padding", () => {
  const c = benchConfig();
  assert.equal(c.dim, 256);
  assert.equal(c.layers, 4);
  assert.equal(c.heads, 4);
  assert.equal(c.vocab, 1024);
  assert.equal(c.mlpHidden, 704);
  assert.equal(c.encoder, "linear");
  assert.deepEqual([c.latentChannels, c.latentSize, c.patchSize], [4, 8, 1]);
  const { layout, latents } = trainBenchBatch(c, 8, 32, cosineSchedule(), new Rng(1));
  assert.equal(layout.batch, 8);
  assert.equal(layout.seqLen, 130);
  assert.equal(layout.images.length, 8);
  assert.equal(latents.length, 8 * 4 * 8 * 8);
  assert.ok(
    layout.docIds.every((d) => d === 0),
    "every position belongs to its row's document",
  );
  for (const img of layout.images)
    assert.equal(img.start, 33, "32 text tokens and BOI precede the patches");
  const targets = layout.textTargets.filter((t) => t >= 0).length;
  assert.equal(targets, 8 * 64, "64 text targets per row");
});

test("train bench figures are finite, positive and consistent (js, tiny shape)", () =>
  withBackendAsync("js", async () => {
    const r = await runTrainBench({
      backend: "js",
      model: TINY,
      batch: 2,
      textTokens: 4,
      steps: 3,
      warmup: 1,
      sgemmN: 64,
    });
    assert.equal(r.backend, "js");
    positive(
      r,
      [
        "threads",
        "params",
        "blockAndHeadParams",
        "sgemmN",
        "sgemmGflops",
        "sgemmGflopsBefore",
        "sgemmGflopsAfter",
        "stepFlops",
        "tokensPerStep",
        "steps",
        "stepSecondsMedian",
        "stepSecondsMin",
        "trainStepsPerSecond",
        "trainTokensPerSecond",
        "trainModelGflops",
        "mfu",
        "peakRssMb",
        "vsPytorchPortTokensPerSecond",
        "vsPytorchPortPeakMemory",
      ],
      "train",
    );
    positive(r.phaseMs, ["batch", "forward", "backward", "optimizer"], "train.phaseMs");
    assert.ok(Number.isFinite(r.lastLoss), `loss ${r.lastLoss}`);
    const s = r.shape;
    assert.equal(s.dim, 32);
    assert.equal(s.patchesPerImage, 16);
    assert.equal(s.seqLen, 8 + 16 + 2);
    assert.equal(s.textTokensPerRow, 8);
    assert.equal(s.textTargetsPerRow, 8);
    assert.equal(r.tokensPerStep, s.batch * s.seqLen);
    assert.ok(r.blockAndHeadParams < r.params);
    assert.ok(r.stepSecondsMin <= r.stepSecondsMedian);
    close(r.trainStepsPerSecond, 1 / r.stepSecondsMedian, "steps/s");
    close(r.trainTokensPerSecond, r.trainStepsPerSecond * r.tokensPerStep, "tokens/s");
    close(
      r.stepFlops,
      trainStepFlops(r.blockAndHeadParams, s.layers, s.seqLen, s.dim, s.batch),
      "FLOPs",
    );
    close(r.trainModelGflops, (r.stepFlops * r.trainStepsPerSecond) / 1e9, "model GFLOP/s");
    close(r.sgemmGflops, Math.max(r.sgemmGflopsBefore, r.sgemmGflopsAfter), "sgemm");
    close(r.mfu, r.trainModelGflops / r.sgemmGflops, "MFU");
    assert.equal(r.workload, "bench");
    close(
      r.vsPytorchPortTokensPerSecond!,
      r.trainTokensPerSecond / PYTORCH_PORT_TRAIN.tokensPerSecond,
      "vs PyTorch",
    );
    close(
      r.vsPytorchPortPeakMemory!,
      r.peakRssMb / PYTORCH_PORT_TRAIN.peakMemoryMb,
      "memory vs PyTorch",
    );
    // The last line of `--json` is this object: it must survive JSON unchanged.
    assert.deepEqual(JSON.parse(JSON.stringify(r)), r);
  }));

test("the demo workload has the matrix shapes of a demo step: its model, 8 rows of 128 positions", () => {
  // The demo's model as a run builds it: its preset and overrides, its tokenizer's vocabulary,
  // the VAE's 4×8×8 latents of 32-pixel images (the config defaults).
  const demo = makeConfig(DEMO_RUN.preset!, { ...DEMO_RUN.model, vocab: DEMO_RUN.vocabSize });
  const w = TRAIN_WORKLOADS.demo;
  const c = benchConfig(w.model);
  for (const k of ["dim", "layers", "heads", "mlpHidden", "vocab", "patchSize"] as const) {
    assert.equal(c[k], demo[k], `${k}: workload ${c[k]}, demo ${demo[k]}`);
  }
  assert.deepEqual([c.latentChannels, c.latentSize], [demo.latentChannels, demo.latentSize]);
  assert.equal(w.batch, DEMO_RUN.rows);
  assert.equal(2 * w.textTokens + patchesPerImage(c) + 2, DEMO_RUN.seqLen);
});

test("the demo workload runs and names itself; the PyTorch port's ratios are for the bench workload only", () =>
  withBackendAsync("js", async () => {
    const r = await runTrainBench({
      backend: "js",
      workload: "demo",
      model: { dim: 16, layers: 1, heads: 2 },
      steps: 1,
      warmup: 0,
      sgemmN: 64,
    });
    assert.equal(r.workload, "demo");
    assert.deepEqual([r.shape.batch, r.shape.seqLen, r.shape.patchesPerImage], [8, 128, 16]);
    assert.equal(r.shape.vocab, 512);
    assert.equal(r.tokensPerStep, 1024);
    assert.equal(r.vsPytorchPortTokensPerSecond, null);
    assert.equal(r.vsPytorchPortPeakMemory, null);
    assert.ok(Number.isFinite(r.lastLoss), `loss ${r.lastLoss}`);
  }));

test("sample bench figures are finite, positive and consistent (js, tiny shape)", () =>
  withBackendAsync("js", async () => {
    const r = await runSampleBench({
      backend: "js",
      model: TINY,
      repeats: 2,
      promptTokens: 4,
      samplerSteps: 3,
      newTokens: 4,
    });
    assert.equal(r.backend, "js");
    positive(
      r,
      [
        "threads",
        "blockAndHeadParams",
        "imageSeconds32Steps",
        "imageSeconds32StepsGuided",
        "textMsPerToken",
        "textPrefillMs",
        "textTokensPerSecond",
        "speedupImageVsPytorchPort",
        "speedupImageGuidedVsPytorchPort",
        "speedupTextVsPytorchPort",
        "peakRssMb",
      ],
      "sample",
    );
    assert.deepEqual(r.workload, {
      promptTokens: 4,
      samplerSteps: 3,
      sampler: "ddim",
      guidanceScale: 3,
      newTokens: 4,
      repeats: 2,
      imageBlockEvals: 4,
    });
    assert.equal(r.shape.patchesPerImage, 16);
    close(r.textTokensPerSecond, 1000 / r.textMsPerToken, "text tokens/s");
    const P = PYTORCH_PORT_SAMPLE;
    close(
      r.speedupImageVsPytorchPort,
      P.imageSeconds32Steps / r.imageSeconds32Steps,
      "image speedup",
    );
    close(
      r.speedupImageGuidedVsPytorchPort,
      P.imageSeconds32StepsGuided / r.imageSeconds32StepsGuided,
      "guided speedup",
    );
    close(r.speedupTextVsPytorchPort, P.textMsPerToken / r.textMsPerToken, "text speedup");
    assert.deepEqual(JSON.parse(JSON.stringify(r)), r);
  }));
