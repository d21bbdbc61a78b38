// The flow-matching objective: what the model is trained against, that it learns, and that
// generation integrates its velocity with the flow Euler sampler.
import assert from "node:assert/strict";
import { test } from "node:test";
import { packDocuments, type TokenDocument } from "../../src/data/pack.js";
import { createSampler } from "../../src/diffusion/config.js";
import { flowInterpolate, flowTimestep, flowVelocityTarget } from "../../src/diffusion/flow.js";
import { addNoise } from "../../src/diffusion/noise.js";
import { cosineSchedule } from "../../src/diffusion/schedule.js";
import { type GenerateOptions, generateBatch } from "../../src/generate/generate.js";
import { GREEDY } from "../../src/generate/sampling.js";
import { makeConfig, type TransfusionConfig } from "../../src/model/config.js";
import {
  lossValues,
  noiseBatch,
  type TransfusionBatch,
  transfusionLoss,
} from "../../src/model/loss.js";
import { Transfusion } from "../../src/model/transfusion.js";
import { mseLoss } from "../../src/tensor/ops/nn.js";
import { AdamW, clipFactor } from "../../src/tensor/optim.js";
import { Rng } from "../../src/tensor/rng.js";
import { noGrad, Tensor } from "../../src/tensor/tensor.js";
import { stepSeed } from "../../src/train/trainer.js";
import { availableBackends, maxAbsDiff, withBackend } from "../helpers.js";

const SPECIAL = { boiId: 1, eoiId: 2, padId: 0, eodId: 3 };
const SHAPE: [number, number, number] = [4, 4, 4];
const PER = 4 * 4 * 4;

function flowConfig(over: Partial<TransfusionConfig> = {}): TransfusionConfig {
  return makeConfig("tiny", {
    vocab: 32,
    dim: 32,
    layers: 2,
    heads: 4,
    mlpHidden: 64,
    latentSize: 4,
    patchSize: 2,
    objective: "flow",
    ...over,
  });
}

/** A mixed batch: caption → image, image-first captioning (t under the cap), a clean prompt image. */
function mixedBatch(seed: number): TransfusionBatch {
  const rng = new Rng(seed);
  const docs: TokenDocument[] = [
    { segments: [{ text: [5, 6, 7] }, { image: 0, t: 999 }] },
    { segments: [{ image: 1, t: 499 }, { text: [8, 9, 10, 11] }] },
    { segments: [{ image: 2, t: 0, diffuse: false }, { text: [12, 13] }, { image: 3, t: 0 }] },
    { segments: [{ text: [14, 15] }, { image: 4, t: 250 }, { text: [16] }] },
  ];
  const { layout } = packDocuments(docs, { seqLen: 24, gridH: 2, gridW: 2, ...SPECIAL });
  const latents = rng.fillNormal(new Float32Array(layout.images.length * PER));
  return { layout, latents };
}

test("flow noiseBatch: x_t is flowInterpolate at τ = (t + u)/T, the target is ε − x0, t = flowTimestep(τ, T)", () => {
  const batch = mixedBatch(1);
  const schedule = cosineSchedule();
  const T = schedule.T;
  const got = noiseBatch(batch, SHAPE, schedule, new Rng(42), "flow");
  // Replay the documented draws: ε for every image, then one u per diffusing image.
  const rng = new Rng(42);
  const eps = rng.fillNormal(new Float32Array(batch.layout.images.length * PER));
  assert.deepEqual(got.eps.f32, eps);
  batch.layout.images.forEach((img, k) => {
    const x0 = batch.latents.subarray(k * PER, (k + 1) * PER);
    const e = eps.subarray(k * PER, (k + 1) * PER);
    const xt = got.xt.f32.subarray(k * PER, (k + 1) * PER);
    assert.deepEqual(got.target.f32.subarray(k * PER, (k + 1) * PER), flowVelocityTarget(x0, e));
    if (!img.diffuse) {
      assert.deepEqual(xt, x0, "a clean conditioning image stays clean");
      assert.equal(got.t[k], 0);
      return;
    }
    const tau = (img.t + rng.uniform()) / T;
    assert.equal(got.time[k], tau);
    assert.ok(tau >= img.t / T && tau < (img.t + 1) / T);
    assert.equal(got.t[k], flowTimestep(tau, T));
    assert.deepEqual(xt, flowInterpolate(x0, e, tau));
  });
  // The captioning image (layout t 499 under the cap of 500) stays below τ = 0.5.
  assert.ok(got.time[1]! < 0.5);
  // DDPM is untouched: the target is ε itself and x_t the DDPM marginal.
  const ddpm = noiseBatch(batch, SHAPE, schedule, new Rng(42));
  assert.equal(ddpm.target, ddpm.eps);
  assert.deepEqual(ddpm.eps.f32, eps);
  const k = 0;
  const ref = addNoise(
    batch.latents.subarray(0, PER),
    eps.subarray(0, PER),
    batch.layout.images[k]!.t,
    schedule,
  );
  assert.deepEqual(ddpm.xt.f32.subarray(0, PER), ref);
});

test("the flow loss is the per-image MSE of the model's prediction against the velocity", () => {
  const cfg = flowConfig();
  const model = new Transfusion(cfg, new Rng(3));
  const batch = mixedBatch(2);
  const schedule = cosineSchedule();
  const parts = noGrad(() => transfusionLoss(model, batch, schedule, new Rng(9)));
  const { xt, target, t } = noiseBatch(batch, SHAPE, schedule, new Rng(9), "flow");
  const pred = noGrad(() => model.forward(batch.layout, xt, t).imagePred!);
  const perImage = mseLoss(pred, target, "perSample").f32;
  let sum = 0;
  let n = 0;
  batch.layout.images.forEach((img, k) => {
    if (!img.diffuse) return;
    sum += perImage[k]!;
    n++;
  });
  assert.equal(parts.images, n);
  assert.ok(
    Math.abs(lossValues(parts).image - sum / n) < 1e-6,
    `loss image part ${lossValues(parts).image} vs ${sum / n}`,
  );
});

for (const be of availableBackends()) {
  test(`a tiny flow model overfits one mixed batch: text CE and velocity MSE both fall (${be})`, () =>
    withBackend(be, () => {
      const cfg = flowConfig();
      const model = new Transfusion(cfg, new Rng(21));
      const batch = mixedBatch(5);
      const schedule = cosineSchedule();
      const opt = new AdamW(model.parameters(), { lr: 3e-3, weightDecay: 0 });
      // A fixed rng keeps ε and τ fixed, so the velocity target is a fixed regression target.
      const measure = () => transfusionLoss(model, batch, schedule, new Rng(1));
      const first = lossValues(measure());
      for (let i = 0; i < 150; i++) {
        const l = measure();
        l.total.backward();
        opt.update(3e-3, clipFactor(model.parameters(), 1).factor);
        opt.zeroGrad();
      }
      const last = lossValues(measure());
      assert.ok(last.lm < first.lm * 0.2, `text CE ${first.lm} → ${last.lm}`);
      assert.ok(last.image < first.image * 0.1, `velocity MSE ${first.image} → ${last.image}`);
    }));
}

function t2i(over: Partial<GenerateOptions>): GenerateOptions {
  return {
    sampling: GREEDY,
    maxNewTokens: 4,
    images: "force",
    stopAfterImage: true,
    maxImages: 1,
    sampler: createSampler({ kind: "flow-euler", steps: 6 }, cosineSchedule(), "flow"),
    guidanceScale: null,
    seed: 17,
    ...over,
  };
}

test("text-to-image with a flow model runs the Euler sampler on the model's velocity", async () => {
  const model = new Transfusion(flowConfig(), new Rng(4));
  const prompt: TokenDocument = { segments: [{ text: [5, 6, 7] }] };
  const sampler = createSampler({ kind: "flow-euler", steps: 6 }, cosineSchedule(), "flow");
  let steps = 0;
  const rows = await generateBatch(
    model,
    [prompt],
    new Float32Array(0),
    SPECIAL,
    t2i({ sampler, onImageStep: () => steps++ }),
  );
  assert.equal(rows[0]!.stop, "image");
  assert.equal(steps, 6);
  const got = (rows[0]!.parts[0] as { latent: Float32Array }).latent;
  assert.equal(got.length, PER);
  // Reference: the same Euler integration with the uncached model on `prompt BOI patches`.
  const x = new Rng(stepSeed(17, 0, 11)).fillNormal(new Float32Array(PER));
  const pack = { seqLen: 3 + 6, gridH: 2, gridW: 2, boiId: 1, eoiId: 2, padId: 0 };
  const { layout } = packDocuments(
    [{ segments: [...prompt.segments, { image: 0, t: 0 }] }],
    pack,
    1,
  );
  const times = Array.from({ length: 6 }, (_, i) => 1 - i / 6);
  for (const tau of times) {
    const t = [flowTimestep(tau, 1000)];
    const v = noGrad(() => model.forward(layout, new Tensor(x.slice(), [1, ...SHAPE]), t))
      .imagePred!.f32;
    for (let j = 0; j < PER; j++) x[j] = x[j]! - v[j]! / 6;
  }
  assert.ok(
    maxAbsDiff(got, x) < 1e-4,
    `generated latent differs from the Euler reference by ${maxAbsDiff(got, x)}`,
  );
  // Guided generation runs too and stays finite.
  const guided = await generateBatch(
    model,
    [prompt],
    new Float32Array(0),
    SPECIAL,
    t2i({ guidanceScale: 3 }),
  );
  const lg = (guided[0]!.parts[0] as { latent: Float32Array }).latent;
  assert.ok(lg.every(Number.isFinite));
  assert.ok(maxAbsDiff(lg, got) > 1e-4, "guidance changed nothing");
});

test("generation refuses a sampler that does not fit the model's objective", async () => {
  const flow = new Transfusion(flowConfig(), new Rng(4));
  const ddpmSampler = createSampler({ kind: "ddpm", steps: 4 }, cosineSchedule(), "ddpm");
  const prompt: TokenDocument[] = [{ segments: [{ text: [5] }] }];
  await assert.rejects(
    () => generateBatch(flow, prompt, new Float32Array(0), SPECIAL, t2i({ sampler: ddpmSampler })),
    /sampler predicts epsilon but a model trained with objective "flow" predicts velocity/,
  );
  const ddpm = new Transfusion(flowConfig({ objective: "ddpm" }), new Rng(4));
  await assert.rejects(
    () => generateBatch(ddpm, prompt, new Float32Array(0), SPECIAL, t2i({})),
    /sampler predicts velocity but a model trained with objective "ddpm" predicts epsilon/,
  );
  // Captioning never runs the sampler, so any sampler is accepted there.
  await assert.doesNotReject(() =>
    generateBatch(
      flow,
      prompt,
      new Float32Array(0),
      SPECIAL,
      t2i({ sampler: ddpmSampler, images: "forbid", maxNewTokens: 2 }),
    ),
  );
});
