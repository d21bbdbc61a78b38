// PyTorch parity of the model: tiny TypeScript models saved as checkpoint folders, run by
// python/tests/forward.py through python/transfusion, must give the same text logits, image
// predictions, loss and parameter gradients as the TypeScript on the same batch.
import assert from "node:assert/strict";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { packDocuments, type Segment, type TokenDocument } from "../../src/data/pack.js";
import { cosineSchedule } from "../../src/diffusion/schedule.js";
import {
  CHECKPOINT_FORMAT,
  CHECKPOINT_VERSION,
  moduleTensors,
  writeJson,
} from "../../src/io/checkpoint.js";
import { makeConfig, type TransfusionConfig } from "../../src/model/config.js";
import { lossValues, noiseBatch, transfusionLoss } from "../../src/model/loss.js";
import { Transfusion } from "../../src/model/transfusion.js";
import { Rng } from "../../src/tensor/rng.js";
import {
  readSafetensorsFile,
  type StInput,
  writeSafetensorsFile,
} from "../../src/tensor/safetensors.js";
import { noGrad, type Tensor } from "../../src/tensor/tensor.js";
import { hostGrad } from "../helpers.js";
import { relErr, relErrScalar, runPythonJson, skipWithoutTorch, tempDir } from "./helpers.js";

/** Largest relative errors allowed (max |a − b| / max |a|). */
const FORWARD_TOL = 1e-4;
const LOSS_TOL = 1e-4;
const GRAD_TOL = 1e-3;

const BASE: Partial<TransfusionConfig> = {
  vocab: 32,
  dim: 32,
  layers: 2,
  heads: 4,
  mlpHidden: 48,
  latentChannels: 4,
  latentSize: 4,
  patchSize: 2,
};

/**
 * The cases. The U-Net ones are 16 wide so that every GroupNorm group holds several channels:
 * with one channel per group (width 8, 8 groups) a conv bias before the norm has a gradient of
 * exactly zero, and the relative error of two roundings of zero means nothing. `oldConfig`
 * writes config.json without the fields added later (timestepEmbedding, imageCodes,
 * modalitySpecific), as old checkpoints have it; their defaults must apply.
 */
const CASES: Array<{ name: string; config: Partial<TransfusionConfig>; oldConfig?: boolean }> = [
  { name: "linear codec, patch 2, 1-D RoPE", config: {} },
  {
    name: "U-Net codec (patch 4: two levels)",
    config: { encoder: "unet", unetWidth: 16, latentSize: 8, patchSize: 4 },
  },
  {
    name: "U-Net codec at patch 1 (no levels)",
    config: { encoder: "unet", unetWidth: 16, latentSize: 2, patchSize: 1 },
  },
  { name: "2-D RoPE on a 3×3 grid", config: { latentSize: 6, patchRope: "2d" } },
  { name: "modality-specific weights", config: { modalitySpecific: true } },
  { name: "causal image attention", config: { imageAttention: "causal" } },
  {
    name: 'timestep embedding "patch" (an old config.json without the field)',
    config: { timestepEmbedding: "patch" },
    oldConfig: true,
  },
  { name: "flow objective", config: { objective: "flow" } },
  {
    name: "discrete-token model (imageCodes 8)",
    config: { vocab: 28, imageCodes: 8, latentChannels: 1, latentSize: 2, patchSize: 1 },
  },
];

/**
 * Returns the documents of every case: images with text before, after or both, a text-only
 * document, a clean (diffuse false) conditioning image, and timesteps 0, 123 and 999. Two rows
 * once packed, both ending in padding. Discrete models get code runs instead of images.
 */
function documents(c: TransfusionConfig, rng: Rng): TokenDocument[] {
  const n = (c.latentSize / c.patchSize) ** 2;
  const image = (k: number, t: number, diffuse = true): Segment =>
    c.imageCodes > 0
      ? { codes: Array.from({ length: n }, () => c.vocab - c.imageCodes + rng.int(c.imageCodes)) }
      : { image: k, t, diffuse };
  return [
    { segments: [{ text: [5, 6, 7] }, image(0, 123), { text: [8, 9] }] },
    { segments: [{ text: [10, 11] }, image(1, 999)] },
    { segments: [image(2, 0, false), { text: [14, 15, 16] }] },
    { segments: [{ text: [17] }, image(3, 0)] },
    { segments: [{ text: [18, 19, 4] }] },
  ];
}

/** Adds N(0, 0.2²) to every vector parameter (norm gains, biases), which init leaves at 1 or 0. */
function perturb(model: Transfusion, rng: Rng): void {
  for (const [, p] of model.namedParameters()) {
    if (p.rank === 1) for (let i = 0; i < p.size; i++) p.f32[i]! += 0.2 * rng.normal();
  }
}

interface CaseData {
  dir: string;
  logits: Float32Array | null;
  targets: Int32Array;
  imagePred: Float32Array | null;
  xt: Float32Array | null;
  tModel: Int32Array | null;
  loss: { total: number; lm: number; image: number; textTargets: number; images: number };
  grads: Map<string, Float32Array>;
}

/** Builds the case's model and batch, saves checkpoint and probe, and records the TS results. */
function buildCase(dir: string, c: (typeof CASES)[number], seed: number): CaseData {
  const config = makeConfig("tiny", { ...BASE, ...c.config });
  const model = new Transfusion(config, new Rng(seed));
  perturb(model, new Rng(seed + 1));
  const ckpt = join(dir, "checkpoint");
  mkdirSync(ckpt, { recursive: true });
  const { timestepEmbedding: _t, imageCodes: _i, modalitySpecific: _m, ...old } = config;
  writeJson(join(ckpt, "config.json"), {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    model: c.oldConfig ? old : config,
  });
  writeSafetensorsFile(join(ckpt, "model.safetensors"), moduleTensors(model), {
    format: "transfusion-model/1",
    step: "0",
  });

  const g = config.latentSize / config.patchSize;
  const docs = documents(config, new Rng(seed + 2));
  const seqLen = 2 * g * g + 16;
  const special = { boiId: 1, eoiId: 2, padId: 0, eodId: 3 };
  const { layout } = packDocuments(docs, { seqLen, gridH: g, gridW: g, ...special }, 2);
  const { latentChannels: C, latentSize: S } = config;
  const N = layout.images.length;
  const latents = new Float32Array(N * C * S * S);
  new Rng(seed + 3).fillNormal(latents);
  const batch = { layout, latents };
  const schedule = cosineSchedule({ T: config.diffusionSteps });

  const probe: Record<string, StInput> = {};
  const rows = (a: Int32Array) => ({ shape: [layout.batch, layout.seqLen], data: a });
  probe.tokens = rows(layout.tokens);
  probe.text_targets = rows(layout.textTargets);
  probe.doc_ids = rows(layout.docIds);
  probe.positions = rows(layout.positions);
  const images = layout.images.flatMap((im) => [
    im.row,
    im.start,
    im.gridH,
    im.gridW,
    im.t,
    im.diffuse ? 1 : 0,
  ]);
  probe.images = { shape: [N, 6], data: Int32Array.from(images) };
  const metadata: Record<string, string> = {};
  let xt: Tensor | null = null;
  let tModel: Int32Array | null = null;
  if (N > 0) {
    // The same draws transfusionLoss makes below from the same seed.
    const noised = noiseBatch(batch, [C, S, S], schedule, new Rng(seed + 4), config.objective);
    xt = noised.xt;
    tModel = noised.t;
    const shape = [N, C, S, S];
    probe.xt = { shape, data: noised.xt.f32 };
    probe.t_model = { shape: [N], data: noised.t };
    probe.x0 = { shape, data: latents };
    probe.eps = { shape, data: noised.eps.f32 };
    probe.t = { shape: [N], data: Int32Array.from(layout.images, (im) => im.t) };
    probe.diffuse = { shape: [N], data: Int32Array.from(layout.images, (im) => +im.diffuse) };
    if (config.objective === "flow") metadata.time = JSON.stringify(Array.from(noised.time));
  }
  writeSafetensorsFile(join(dir, "probe.safetensors"), probe, metadata);

  const out = noGrad(() => model.forward(layout, xt, tModel ?? []));
  const parts = transfusionLoss(model, batch, schedule, new Rng(seed + 4));
  model.zeroGrad();
  parts.total.backward();
  const grads = new Map<string, Float32Array>();
  for (const [name, p] of model.namedParameters()) {
    grads.set(name, p.grad ? hostGrad(p)!.slice() : new Float32Array(p.size));
  }
  return {
    dir,
    logits: out.textLogits ? out.textLogits.f32.slice() : null,
    targets: out.textTargets,
    imagePred: out.imagePred ? out.imagePred.f32.slice() : null,
    xt: xt ? xt.f32 : null,
    tModel,
    loss: {
      ...lossValues(parts),
      textTargets: parts.textTargets,
      images: parts.images,
    },
    grads,
  };
}

interface PySummary {
  total: number;
  sums_total: number;
  lm: number;
  image: number;
  text_targets: number;
  images: number;
}

describe("PyTorch mirror: forward, loss and gradients equal the TypeScript", {
  skip: skipWithoutTorch(),
}, () => {
  const built: CaseData[] = [];
  let summaries: Record<string, PySummary> = {};
  let root = "";
  after(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });
  before(() => {
    root = tempDir("forward");
    CASES.forEach((c, i) => {
      built.push(buildCase(join(root, `case-${i}`), c, 100 * (i + 1)));
    });
    summaries = runPythonJson<Record<string, PySummary>>(
      "forward.py",
      built.map((b) => b.dir),
      240_000,
    );
  });

  CASES.forEach((c, i) => {
    test(c.name, (t) => {
      const ts = built[i]!;
      const py = readSafetensorsFile(join(ts.dir, "out.safetensors")).tensors;
      const summary = summaries[ts.dir]!;
      const notes: string[] = [];

      assert.deepEqual([...(py.text_targets!.data as Int32Array)], [...ts.targets]);
      assert.ok(ts.logits && py.text_logits, "both sides compute text logits");
      const logitErr = relErr(ts.logits, py.text_logits.data as Float32Array);
      notes.push(`logits ${logitErr.toExponential(2)}`);
      assert.ok(logitErr <= FORWARD_TOL, `text logits differ: relative error ${logitErr}`);
      if (ts.imagePred) {
        assert.ok(py.image_pred, "Python returns image predictions");
        const predErr = relErr(ts.imagePred, py.image_pred.data as Float32Array);
        notes.push(`image ${predErr.toExponential(2)}`);
        assert.ok(predErr <= FORWARD_TOL, `image predictions differ: relative error ${predErr}`);
      } else {
        assert.equal(py.image_pred, undefined);
      }

      if (ts.xt && ts.tModel) {
        // The noising itself: the DDPM schedule and arithmetic are float64 on both sides.
        assert.deepEqual([...(py.noised_t!.data as Int32Array)], [...ts.tModel]);
        const xtErr = relErr(ts.xt, py.noised_xt!.data as Float32Array);
        notes.push(`x_t ${xtErr.toExponential(2)}`);
        assert.ok(xtErr <= 1e-6, `noised latents differ: relative error ${xtErr}`);
      }

      const lossErr = relErrScalar(ts.loss.total, summary.total);
      notes.push(`loss ${lossErr.toExponential(2)}`);
      assert.ok(lossErr <= LOSS_TOL, `loss ${summary.total} vs TS ${ts.loss.total}`);
      assert.ok(
        relErrScalar(ts.loss.lm, summary.lm) <= LOSS_TOL,
        `lm ${summary.lm} vs ${ts.loss.lm}`,
      );
      assert.ok(
        relErrScalar(ts.loss.image, summary.image) <= LOSS_TOL,
        `image loss ${summary.image} vs ${ts.loss.image}`,
      );
      assert.equal(summary.text_targets, ts.loss.textTargets);
      assert.equal(summary.images, ts.loss.images);
      // loss_sums, reduced as the trainer reduces it, is the same loss.
      assert.ok(relErrScalar(summary.total, summary.sums_total) <= 1e-5, "loss_sums total");

      let worst = 0;
      let worstName = "";
      const bad: string[] = [];
      for (const [name, g] of ts.grads) {
        const pg = py[`grad.${name}`];
        assert.ok(pg, `Python has no gradient for ${name}`);
        const e = relErr(g, pg.data as Float32Array);
        if (e > worst) [worst, worstName] = [e, name];
        if (e > GRAD_TOL) bad.push(`${name} (${e.toExponential(2)})`);
      }
      assert.deepEqual(bad, [], `gradients differ (relative error > ${GRAD_TOL})`);
      notes.push(`grads ${ts.grads.size} worst ${worst.toExponential(2)} (${worstName})`);
      t.diagnostic(notes.join(", "));
    });
  });
});
