// Decoding: cached = uncached, clean keys after an image, time conditioning, guidance, batching.
import assert from "node:assert/strict";
import { test } from "node:test";
import { packDocuments, type TokenDocument } from "../../src/data/pack.js";
import { DdimSampler } from "../../src/diffusion/samplers.js";
import { cosineSchedule } from "../../src/diffusion/schedule.js";
import { DecodeState } from "../../src/generate/cache.js";
import { type GenerateOptions, generateBatch } from "../../src/generate/generate.js";
import { GREEDY } from "../../src/generate/sampling.js";
import type { TransfusionConfig } from "../../src/model/config.js";
import { Transfusion } from "../../src/model/transfusion.js";
import { Rng } from "../../src/tensor/rng.js";
import { noGrad, Tensor } from "../../src/tensor/tensor.js";
import { tinyConfig } from "../batches.js";
import { availableBackends, maxAbsDiff, withBackend } from "../helpers.js";

const SPECIAL = { boiId: 1, eoiId: 2, padId: 0, eodId: 3 };

function model(over: Partial<TransfusionConfig> = {}): Transfusion {
  const m = new Transfusion(tinyConfig(over), new Rng(4));
  // Larger weights than the init make attention sharp, so wrong keys show in the outputs.
  const rng = new Rng(8);
  for (const p of m.parameters()) if (p.rank >= 2) rng.fillNormal(p.f32, 0, 0.25);
  return m;
}

const PER = 4 * 4 * 4;
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
  const xt = layout.images.length ? new Tensor(latents, [layout.images.length, 4, 4, 4]) : null;
  return noGrad(() => m.forward(layout, xt, t, { textRows: Int32Array.of(len - 1) }));
}

for (const be of availableBackends()) {
  test(`cached and uncached decoding agree for text, image and mixed prompts (${be})`, () =>
    withBackend(be, () => {
      const m = model();
      const img = latent(1);
      for (const prompt of [
        { segments: [{ text: [5, 6, 7] }] },
        { segments: [{ image: 0, t: 0 }] },
        { segments: [{ text: [9, 4] }, { image: 0, t: 0 }, { text: [11] }] },
      ] as TokenDocument[]) {
        const hasImage = prompt.segments.some((s) => "image" in s);
        const lat = hasImage ? img : new Float32Array(0);
        const state = new DecodeState(m, 1, 40);
        let logits = state.prefill([prompt], lat, SPECIAL);
        const tokens = [12, 13, 14];
        const sofar: TokenDocument = { segments: [...prompt.segments] };
        const ref0 = uncached(m, sofar, lat, hasImage ? [0] : []).textLogits!.f32;
        assert.ok(
          maxAbsDiff(logits.f32, ref0) < 1e-4,
          `prefill logits differ by ${maxAbsDiff(logits.f32, ref0)}`,
        );
        for (const tok of tokens) {
          logits = state.appendTokens(Int32Array.of(tok));
          (sofar.segments as TokenDocument["segments"][number][]).push({ text: [tok] });
          const ref = uncached(m, sofar, lat, hasImage ? [0] : []).textLogits!.f32;
          assert.ok(
            maxAbsDiff(logits.f32, ref) < 1e-4,
            `token ${tok}: logits differ by ${maxAbsDiff(logits.f32, ref)}`,
          );
        }
      }
    }));

  for (const [imageAttention, patchRope] of [
    ["bidirectional", "1d"],
    ["causal", "1d"],
    ["bidirectional", "2d"],
  ] as const)
    test(`the image block matches the uncached model, and text after it sees the clean latent (${imageAttention}, ${patchRope} RoPE, ${be})`, () =>
      withBackend(be, () => {
        const m = model({ imageAttention, patchRope });
        const noisy = latent(2);
        const clean = latent(3);
        const state = new DecodeState(m, 1, 40);
        state.prefill([{ segments: [{ text: [5, 6] }] }], new Float32Array(0), SPECIAL);
        state.appendTokens(Int32Array.of(SPECIAL.boiId));
        const pred = state.imageBlock(new Tensor(noisy, [1, 4, 4, 4]), [700], false).f32;
        const ref = uncached(
          m,
          { segments: [{ text: [5, 6] }, { image: 0, t: 700 }] },
          noisy,
          [700],
        ).imagePred!.f32;
        assert.ok(
          maxAbsDiff(pred, ref) < 1e-4,
          `image prediction differs by ${maxAbsDiff(pred, ref)}`,
        );
        // The loop's last evaluation commits the clean latent; text then continues after EOI.
        state.imageBlock(new Tensor(clean, [1, 4, 4, 4]), [0], true);
        const after = state.appendTokens(Int32Array.of(SPECIAL.eoiId)).f32;
        const doc = { segments: [{ text: [5, 6] }, { image: 0, t: 0 }] } as TokenDocument;
        const refClean = uncached(m, doc, clean, [0]).textLogits!.f32;
        const refNoisy = uncached(m, doc, noisy, [0]).textLogits!.f32;
        assert.ok(
          maxAbsDiff(after, refClean) < 1e-4,
          `post-image logits differ from the clean reference by ${maxAbsDiff(after, refClean)}`,
        );
        // Sensitivity: had the cache kept the noisy step, the logits would be far from these.
        assert.ok(
          maxAbsDiff(after, refNoisy) > 1e-2,
          "clean and noisy keys give the same logits: the test would not notice",
        );
      }));
}

test("time conditioning matters: the same latent at another t gives another prediction", () => {
  const m = model();
  const x = latent(4);
  const run = (t: number) => {
    const s = new DecodeState(m, 1, 20);
    s.prefill([{ segments: [{ text: [5] }] }], new Float32Array(0), SPECIAL);
    s.appendTokens(Int32Array.of(SPECIAL.boiId));
    return s.imageBlock(new Tensor(x, [1, 4, 4, 4]), [t], false).f32.slice();
  };
  assert.ok(maxAbsDiff(run(10), run(900)) > 1e-3);
  assert.deepEqual(run(10), run(10));
});

function t2i(over: Partial<GenerateOptions> = {}): GenerateOptions {
  return {
    sampling: GREEDY,
    maxNewTokens: 4,
    images: "force",
    stopAfterImage: true,
    maxImages: 1,
    sampler: new DdimSampler(cosineSchedule(), { steps: 8 }),
    guidanceScale: null,
    seed: 17,
    ...over,
  };
}

test("guidance with s = 1 equals plain conditional sampling", async () => {
  const m = model();
  const prompts: TokenDocument[] = [{ segments: [{ text: [5, 6, 7] }] }];
  const a = await generateBatch(
    m,
    prompts,
    new Float32Array(0),
    SPECIAL,
    t2i({ guidanceScale: null }),
  );
  const b = await generateBatch(
    m,
    prompts,
    new Float32Array(0),
    SPECIAL,
    t2i({ guidanceScale: 1 }),
  );
  const c = await generateBatch(
    m,
    prompts,
    new Float32Array(0),
    SPECIAL,
    t2i({ guidanceScale: 3 }),
  );
  const la = (a[0]!.parts[0] as { latent: Float32Array }).latent;
  const lb = (b[0]!.parts[0] as { latent: Float32Array }).latent;
  const lc = (c[0]!.parts[0] as { latent: Float32Array }).latent;
  assert.ok(maxAbsDiff(la, lb) < 1e-4, `s=1 differs by ${maxAbsDiff(la, lb)}`);
  assert.ok(maxAbsDiff(la, lc) > 1e-3, "guidance 3 changed nothing");
});

test("batched text-to-image equals one-by-one and is deterministic for a seed", async () => {
  const m = model();
  const prompts: TokenDocument[] = [
    { segments: [{ text: [5, 6, 7] }] },
    { segments: [{ text: [8] }] },
    { segments: [{ text: [9, 10] }] },
  ];
  const batched = await generateBatch(
    m,
    prompts,
    new Float32Array(0),
    SPECIAL,
    t2i({ guidanceScale: 2 }),
  );
  for (const [i, p] of prompts.entries()) {
    const one = await generateBatch(
      m,
      [p],
      new Float32Array(0),
      SPECIAL,
      t2i({ guidanceScale: 2, firstSample: i }),
    );
    const a = (batched[i]!.parts[0] as { latent: Float32Array }).latent;
    const b = (one[0]!.parts[0] as { latent: Float32Array }).latent;
    assert.ok(maxAbsDiff(a, b) < 1e-4, `sample ${i} differs by ${maxAbsDiff(a, b)}`);
  }
  const again = await generateBatch(
    m,
    prompts,
    new Float32Array(0),
    SPECIAL,
    t2i({ guidanceScale: 2 }),
  );
  assert.deepEqual(again, batched);
});

test("captioning never samples BOI or EOI and stops at end of document or the length limit", async () => {
  const m = model();
  const rows = await generateBatch(m, [{ segments: [{ image: 0, t: 0 }] }], latent(5), SPECIAL, {
    ...t2i(),
    images: "forbid",
    stopAfterImage: false,
    maxNewTokens: 12,
  });
  const text = rows[0]!.parts.flatMap((p) => ("text" in p ? p.text : []));
  assert.ok(text.length <= 12);
  assert.ok(!text.includes(SPECIAL.boiId) && !text.includes(SPECIAL.eoiId));
  assert.ok(rows[0]!.stop === "length" || text[text.length - 1] === SPECIAL.eodId);
});
