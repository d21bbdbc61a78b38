// Modality-specific weights (Mixture-of-Transformers option): names and counts, exact routing,
// gradient reach, cached = uncached decoding, and learning.
import assert from "node:assert/strict";
import { test } from "node:test";
import { packDocuments, type TokenDocument } from "../../src/data/pack.js";
import { cosineSchedule } from "../../src/diffusion/schedule.js";
import { DecodeState } from "../../src/generate/cache.js";
import { makeConfig, type TransfusionConfig, validateConfig } from "../../src/model/config.js";
import {
  lossValues,
  noiseBatch,
  type TransfusionBatch,
  transfusionLoss,
} from "../../src/model/loss.js";
import { Transfusion } from "../../src/model/transfusion.js";
import { AdamW, clipFactor } from "../../src/tensor/optim.js";
import { Rng } from "../../src/tensor/rng.js";
import { noGrad, Tensor } from "../../src/tensor/tensor.js";
import { tinyConfig } from "../batches.js";
import { availableBackends, hostGrad, maxAbsDiff, withBackend } from "../helpers.js";

const SPECIAL = { boiId: 1, eoiId: 2, padId: 0, eodId: 3 };
const SHAPE: [number, number, number] = [4, 4, 4];
const PER = 4 * 4 * 4;

function config(over: Partial<TransfusionConfig> = {}): TransfusionConfig {
  return tinyConfig({ vocab: 32, modalitySpecific: true, ...over });
}

function mixedBatch(seed: number): TransfusionBatch {
  const docs: TokenDocument[] = [
    { segments: [{ text: [5, 6, 7] }, { image: 0, t: 900 }] },
    { segments: [{ image: 1, t: 300 }, { text: [8, 9, 10, 11] }] },
    { segments: [{ image: 2, t: 0, diffuse: false }, { text: [12, 13] }, { image: 3, t: 600 }] },
    { segments: [{ text: [14, 15] }, { image: 4, t: 50 }, { text: [16] }] },
  ];
  const { layout } = packDocuments(docs, { seqLen: 24, gridH: 2, gridW: 2, ...SPECIAL });
  const latents = new Rng(seed).fillNormal(new Float32Array(layout.images.length * PER));
  return { layout, latents };
}

const BLOCK_NAMES = [
  "attn_norm.weight",
  "attn.q_proj.weight",
  "attn.k_proj.weight",
  "attn.v_proj.weight",
  "attn.o_proj.weight",
  "mlp_norm.weight",
  "mlp.w1.weight",
  "mlp.w3.weight",
  "mlp.w2.weight",
];
const IMAGE_NAMES = [
  "attn.q_proj_image.weight",
  "attn.k_proj_image.weight",
  "attn.v_proj_image.weight",
  "attn.o_proj_image.weight",
  "mlp_image.w1.weight",
  "mlp_image.w3.weight",
  "mlp_image.w2.weight",
];

test("modality-specific weights are off by default: names and counts are the shared model's", () => {
  const off = config({ modalitySpecific: false });
  assert.equal(makeConfig("tiny").modalitySpecific, false);
  // A config saved before the field existed loads as the shared-weight model.
  const { modalitySpecific: _, ...old } = off;
  assert.equal(validateConfig(old).modalitySpecific, false);
  assert.throws(
    () => validateConfig({ ...off, modalitySpecific: "yes" }),
    /field "modalitySpecific" must be true or false/,
  );

  const { dim: d, mlpHidden: h, vocab: V, layers: L } = off;
  const shared = new Transfusion(off, new Rng(1));
  const names = shared.namedParameters().map(([n]) => n);
  const blockNames = names.filter((n) => n.startsWith("layers."));
  assert.deepEqual(
    blockNames,
    [0, 1].flatMap((i) => BLOCK_NAMES.map((n) => `layers.${i}.${n}`)),
  );
  const perBlock = 2 * d + 4 * d * d + 3 * d * h;
  const expected = V * d + shared.requireImageCodec().parameterCount() + L * perBlock + d + d * V;
  assert.equal(shared.parameterCount(), expected);

  const mot = new Transfusion(config(), new Rng(1));
  const motNames = mot.namedParameters().map(([n]) => n);
  const imageNames = motNames.filter((n) => n.includes("_image"));
  assert.deepEqual(
    imageNames,
    [0, 1].flatMap((i) => IMAGE_NAMES.map((n) => `layers.${i}.${n}`)),
  );
  // The shared names come in the same order; the image copies add 4d² + 3dh per layer.
  assert.deepEqual(
    motNames.filter((n) => !n.includes("_image")),
    names,
  );
  assert.equal(mot.parameterCount(), expected + L * (4 * d * d + 3 * d * h));
});

test("routing is exact: image copies equal to the shared weights give the shared model's outputs", () => {
  const shared = new Transfusion(config({ modalitySpecific: false }), new Rng(2));
  const mot = new Transfusion(config(), new Rng(3));
  const src = new Map(shared.namedParameters());
  for (const [name, p] of mot.namedParameters()) {
    const from = src.get(name.replace("_proj_image", "_proj").replace("mlp_image", "mlp"))!;
    p.f32.set(from.f32);
  }
  const batch = mixedBatch(4);
  const { xt, t } = noiseBatch(batch, SHAPE, cosineSchedule(), new Rng(5));
  const a = noGrad(() => shared.forward(batch.layout, xt, t));
  const b = noGrad(() => mot.forward(batch.layout, xt, t));
  assert.ok(maxAbsDiff(a.textLogits!.f32, b.textLogits!.f32) < 1e-5);
  assert.ok(maxAbsDiff(a.imagePred!.f32, b.imagePred!.f32) < 1e-5);
  // Changing an image copy moves the patch predictions but not text that precedes every image.
  const rng = new Rng(6);
  for (const [name, p] of mot.namedParameters())
    if (name.includes("_image.")) rng.fillNormal(p.f32, 0, 0.25);
  const firstText = Int32Array.of(0, 1); // doc 0's "5 → 6", "6 → 7": before its image
  const c = noGrad(() => shared.forward(batch.layout, xt, t, { textRows: firstText }));
  const d = noGrad(() => mot.forward(batch.layout, xt, t, { textRows: firstText }));
  assert.ok(
    maxAbsDiff(c.textLogits!.f32, d.textLogits!.f32) < 1e-5,
    "text before any image saw the image weights",
  );
  assert.ok(
    maxAbsDiff(c.imagePred!.f32, d.imagePred!.f32) > 1e-3,
    "the image weights had no effect on patches",
  );
});

test("gradients reach the image-specific and the shared weights", () => {
  const cfg = config();
  const model = new Transfusion(cfg, new Rng(11));
  const loss = transfusionLoss(model, mixedBatch(6), cosineSchedule(), new Rng(7));
  loss.total.backward();
  for (const [name, p] of model.namedParameters()) {
    assert.ok(p.grad, `${name} received no gradient`);
    assert.ok(
      hostGrad(p)!.some((v) => v !== 0),
      `${name} gradient is all zeros`,
    );
  }
  // A text-only batch leaves the image copies without gradient: only patch rows use them.
  model.zeroGrad();
  const { layout } = packDocuments([{ segments: [{ text: [5, 6, 7, 8, 9] }] }], {
    seqLen: 8,
    gridH: 2,
    gridW: 2,
    ...SPECIAL,
  });
  transfusionLoss(
    model,
    { layout, latents: new Float32Array(0) },
    cosineSchedule(),
    new Rng(7),
  ).total.backward();
  for (const [name, p] of model.namedParameters()) {
    if (name.includes("_image."))
      assert.ok(!p.grad || hostGrad(p)!.every((v) => v === 0), `${name} got a gradient from text`);
  }
});

/** A modality-specific model with large weights so wrong keys or routing show in the outputs. */
function sharpModel(): Transfusion {
  const m = new Transfusion(config({ vocab: 24 }), new Rng(4));
  const rng = new Rng(8);
  for (const p of m.parameters()) if (p.rank >= 2) rng.fillNormal(p.f32, 0, 0.25);
  return m;
}

function latent(seed: number): Float32Array {
  return new Rng(seed).fillNormal(new Float32Array(PER));
}

/** Logits at the last position of `doc` and image predictions, computed without a cache. */
function uncached(m: Transfusion, doc: TokenDocument, latents: Float32Array, t: number[]) {
  const len = doc.segments.reduce((s, g) => s + ("text" in g ? g.text.length : 4 + 2), 0);
  const { layout } = packDocuments(
    [doc],
    { seqLen: len, gridH: 2, gridW: 2, boiId: 1, eoiId: 2, padId: 0 },
    1,
  );
  layout.images.forEach((im, k) => {
    im.t = t[k]!;
  });
  const xt = layout.images.length ? new Tensor(latents, [layout.images.length, ...SHAPE]) : null;
  return noGrad(() => m.forward(layout, xt, t, { textRows: Int32Array.of(len - 1) }));
}

for (const be of availableBackends()) {
  test(`modality-specific: cached and uncached decoding agree for text, image and mixed prompts (${be})`, () =>
    withBackend(be, () => {
      const m = sharpModel();
      const img = latent(1);
      for (const prompt of [
        { segments: [{ text: [5, 6, 7] }] },
        { segments: [{ image: 0, t: 0 }] },
        { segments: [{ text: [9, 4] }, { image: 0, t: 0 }, { text: [11] }] },
      ] as TokenDocument[]) {
        const hasImage = prompt.segments.some((s) => "image" in s);
        const lat = hasImage ? img : new Float32Array(0);
        const ts = hasImage ? [0] : [];
        const state = new DecodeState(m, 1, 40);
        let logits = state.prefill([prompt], lat, SPECIAL);
        const sofar: TokenDocument = { segments: [...prompt.segments] };
        const ref0 = uncached(m, sofar, lat, ts).textLogits!.f32;
        assert.ok(
          maxAbsDiff(logits.f32, ref0) < 1e-4,
          `prefill logits differ by ${maxAbsDiff(logits.f32, ref0)}`,
        );
        for (const tok of [12, 13, 14]) {
          logits = state.appendTokens(Int32Array.of(tok));
          (sofar.segments as TokenDocument["segments"][number][]).push({ text: [tok] });
          const ref = uncached(m, sofar, lat, ts).textLogits!.f32;
          assert.ok(
            maxAbsDiff(logits.f32, ref) < 1e-4,
            `token ${tok}: logits differ by ${maxAbsDiff(logits.f32, ref)}`,
          );
        }
      }
    }));

  test(`modality-specific: the image block matches the uncached model, text after it sees the clean latent (${be})`, () =>
    withBackend(be, () => {
      const m = sharpModel();
      const noisy = latent(2);
      const clean = latent(3);
      const state = new DecodeState(m, 1, 40);
      state.prefill([{ segments: [{ text: [5, 6] }] }], new Float32Array(0), SPECIAL);
      state.appendTokens(Int32Array.of(SPECIAL.boiId));
      const pred = state.imageBlock(new Tensor(noisy, [1, ...SHAPE]), [700], false).f32;
      const ref = uncached(m, { segments: [{ text: [5, 6] }, { image: 0, t: 700 }] }, noisy, [700])
        .imagePred!.f32;
      assert.ok(
        maxAbsDiff(pred, ref) < 1e-4,
        `image prediction differs by ${maxAbsDiff(pred, ref)}`,
      );
      state.imageBlock(new Tensor(clean, [1, ...SHAPE]), [0], true);
      const after = state.appendTokens(Int32Array.of(SPECIAL.eoiId)).f32;
      const doc = { segments: [{ text: [5, 6] }, { image: 0, t: 0 }] } as TokenDocument;
      const refClean = uncached(m, doc, clean, [0]).textLogits!.f32;
      const refNoisy = uncached(m, doc, noisy, [0]).textLogits!.f32;
      assert.ok(
        maxAbsDiff(after, refClean) < 1e-4,
        `post-image logits differ by ${maxAbsDiff(after, refClean)}`,
      );
      assert.ok(
        maxAbsDiff(after, refNoisy) > 1e-2,
        "clean and noisy keys give the same logits: the test would not notice",
      );
    }));

  test(`a tiny modality-specific model overfits one mixed batch: text CE and image MSE both fall (${be})`, () =>
    withBackend(be, () => {
      const model = new Transfusion(config(), new Rng(21));
      const batch = mixedBatch(9);
      const schedule = cosineSchedule();
      const opt = new AdamW(model.parameters(), { lr: 3e-3, weightDecay: 0 });
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
      assert.ok(last.image < first.image * 0.1, `image MSE ${first.image} → ${last.image}`);
    }));
}
