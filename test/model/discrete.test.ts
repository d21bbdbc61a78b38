// The discrete-token (Chameleon-style) baseline: code runs in the layout, one next-token loss,
// cached = uncached decoding over codes, and a tiny model that learns a caption → image pair.
import assert from "node:assert/strict";
import { test } from "node:test";
import { packDocuments, type TokenDocument } from "../../src/data/pack.js";
import { DdimSampler } from "../../src/diffusion/samplers.js";
import { cosineSchedule } from "../../src/diffusion/schedule.js";
import { textTargetRows } from "../../src/eval/held-out-loss.js";
import { DecodeState } from "../../src/generate/cache.js";
import { generateBatch } from "../../src/generate/generate.js";
import { GREEDY } from "../../src/generate/sampling.js";
import {
  codeToken,
  makeConfig,
  type TransfusionConfig,
  textVocab,
  validateConfig,
} from "../../src/model/config.js";
import { lossValues, transfusionLoss } from "../../src/model/loss.js";
import { Transfusion } from "../../src/model/transfusion.js";
import { crossEntropy } from "../../src/tensor/ops/nn.js";
import { AdamW } from "../../src/tensor/optim.js";
import { Rng } from "../../src/tensor/rng.js";
import { noGrad } from "../../src/tensor/tensor.js";
import { availableBackends, maxAbsDiff, withBackend } from "../helpers.js";

const SPECIAL = { boiId: 1, eoiId: 2, padId: 0, eodId: 3 };
const PACK = { gridH: 2, gridW: 2, boiId: 1, eoiId: 2, padId: 0 };

/** A discrete model: 20 text ids, 8 codes (ids 20…27), a 2×2 code grid. */
function discreteConfig(over: Partial<TransfusionConfig> = {}): TransfusionConfig {
  return makeConfig("tiny", {
    vocab: 28,
    imageCodes: 8,
    dim: 32,
    layers: 2,
    heads: 4,
    mlpHidden: 48,
    latentChannels: 1,
    latentSize: 2,
    patchSize: 1,
    ...over,
  });
}

test("a code run is laid out between BOI and EOI; its last code has no target", () => {
  const doc: TokenDocument = { segments: [{ text: [5, 6] }, { codes: [20, 21, 22, 23] }] };
  const { layout } = packDocuments([doc], { ...PACK, seqLen: 10, eodId: 3 }, 1);
  assert.deepEqual([...layout.tokens], [5, 6, 1, 20, 21, 22, 23, 2, 3, 0]);
  // Caption → BOI, BOI → first code, codes → next code, last code → nothing, EOI → EOD.
  assert.deepEqual([...layout.textTargets], [6, 1, 20, 21, 22, 23, -1, 3, -1, -1]);
  assert.equal(layout.images.length, 0);
});

test("the caption loss reads only text targets, not the codes before the caption", () => {
  const c = discreteConfig();
  const doc: TokenDocument = { segments: [{ codes: [20, 21, 22, 23] }, { text: [5, 6, 7] }] };
  const { layout } = packDocuments([doc], { ...PACK, seqLen: 12, eodId: 3 }, 1);
  // Targets: BOI→20, 20→21, 21→22, 22→23, (23: none), EOI→5, 5→6, 6→7, 7→EOD.
  assert.deepEqual([...textTargetRows(layout, c)], [5, 6, 7, 8]);
});

test("a discrete config needs patch 1, one channel and a vocabulary larger than its codes", () => {
  const c = discreteConfig();
  assert.equal(textVocab(c), 20);
  assert.equal(codeToken(c, 3), 23);
  assert.throws(() => validateConfig({ ...c, patchSize: 2 }), /"patchSize" and "latentChannels"/);
  assert.throws(() => validateConfig({ ...c, vocab: 8 }), /"vocab" \(8\) must exceed/);
  // Configs saved before the field existed are Transfusion models with t in patch space.
  const {
    imageCodes: _a,
    timestepEmbedding: _b,
    ...old
  } = makeConfig("tiny", {
    vocab: 32,
    latentSize: 4,
  });
  const read = validateConfig(old);
  assert.equal(read.imageCodes, 0);
  assert.equal(read.timestepEmbedding, "patch");
  const m = new Transfusion(c, new Rng(1));
  assert.equal(m.imageCodec, null);
  assert.throws(() => m.requireImageCodec(), /no patch codec/);
});

test("the discrete loss is the mean cross-entropy over text and codes, reported apart", () => {
  const m = new Transfusion(discreteConfig(), new Rng(2));
  const docs: TokenDocument[] = [
    { segments: [{ text: [5, 6, 7] }, { codes: [20, 27, 24, 21] }] },
    { segments: [{ codes: [22, 22, 23, 25] }, { text: [9, 10] }] },
  ];
  const { layout } = packDocuments(docs, { ...PACK, seqLen: 24, eodId: 3 }, 1);
  const parts = noGrad(() =>
    transfusionLoss(m, { layout, latents: new Float32Array(0) }, cosineSchedule(), new Rng(1)),
  );
  const rows = Int32Array.from(
    [...layout.textTargets.keys()].filter((i) => layout.textTargets[i]! >= 0),
  );
  const out = noGrad(() => m.forward(layout, null, [], { textRows: rows }));
  const targets = Int32Array.from(rows, (r) => layout.textTargets[r]!);
  const per = noGrad(() => crossEntropy(out.textLogits!, targets, "none")).f32;
  const mean = (f: (t: number) => boolean) => {
    const v = [...per].filter((_, i) => f(targets[i]!));
    return v.reduce((a, b) => a + b, 0) / v.length;
  };
  assert.ok(Math.abs(parts.total.item() - mean(() => true)) < 1e-5);
  assert.ok(Math.abs(lossValues(parts).image - mean((t) => t >= 20)) < 1e-5);
  assert.ok(Math.abs(lossValues(parts).lm - mean((t) => t < 20)) < 1e-5);
  assert.equal(parts.images, 2); // 4 code targets per image (BOI predicts the first)
});

for (const be of availableBackends()) {
  test(`cached and uncached decoding agree over image codes (${be})`, () =>
    withBackend(be, () => {
      const m = new Transfusion(discreteConfig(), new Rng(4));
      const rng = new Rng(8);
      for (const p of m.parameters()) if (p.rank >= 2) rng.fillNormal(p.f32, 0, 0.25);
      const prompt: TokenDocument = { segments: [{ text: [5, 6] }, { codes: [21, 20] }] };
      // A prompt ending inside nothing: the codes segment is a whole image (BOI 2 codes EOI).
      const state = new DecodeState(m, 1, 32);
      let logits = state.prefill([prompt], new Float32Array(0), SPECIAL);
      const sofar: number[] = [5, 6, 1, 21, 20, 2];
      const check = () => {
        const { layout } = packDocuments(
          [{ segments: [{ text: sofar }] }],
          { ...PACK, seqLen: sofar.length },
          1,
        );
        const ref = noGrad(() =>
          m.forward(layout, null, [], { textRows: Int32Array.of(sofar.length - 1) }),
        ).textLogits!.f32;
        assert.ok(maxAbsDiff(logits.f32, ref) < 1e-4, `differ by ${maxAbsDiff(logits.f32, ref)}`);
      };
      check();
      for (const tok of [1, 25, 26, 27, 20, 2, 7]) {
        logits = state.appendTokens(Int32Array.of(tok));
        sofar.push(tok);
        check();
      }
    }));
}

test("a tiny discrete model learns a caption → image pair, draws it and captions it", async () => {
  const c = discreteConfig();
  const m = new Transfusion(c, new Rng(3));
  const caption = [7, 8, 9];
  const codes = [23, 20, 26, 21];
  const docs: TokenDocument[] = [
    { segments: [{ text: caption }, { codes }] },
    { segments: [{ codes }, { text: caption }] },
  ];
  const { layout } = packDocuments(docs, { ...PACK, seqLen: 24, eodId: 3 }, 1);
  const opt = new AdamW(m.parameters(), { lr: 3e-3, weightDecay: 0 });
  let loss = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 150; i++) {
    const parts = transfusionLoss(
      m,
      { layout, latents: new Float32Array(0) },
      cosineSchedule(),
      new Rng(i),
    );
    loss = parts.total.item();
    parts.total.backward();
    opt.update();
    opt.zeroGrad();
  }
  assert.ok(loss < 0.05, `loss ${loss}`);
  const common = {
    sampler: new DdimSampler(cosineSchedule(), { steps: 2 }),
    seed: 1,
  };
  const [drawn] = await generateBatch(
    m,
    [{ segments: [{ text: caption }] }],
    new Float32Array(0),
    SPECIAL,
    {
      ...common,
      sampling: GREEDY,
      maxNewTokens: 1,
      images: "force",
      stopAfterImage: true,
      maxImages: 1,
      guidanceScale: 2,
    },
  );
  const part = drawn!.parts.find((p) => "codes" in p);
  assert.ok(part && "codes" in part);
  assert.deepEqual(
    [...part.codes],
    codes.map((k) => k - textVocab(c)),
  );
  const [captioned] = await generateBatch(
    m,
    [{ segments: [{ codes }] }],
    new Float32Array(0),
    SPECIAL,
    {
      ...common,
      sampling: GREEDY,
      maxNewTokens: 8,
      images: "forbid",
      stopAfterImage: false,
      maxImages: 0,
      guidanceScale: null,
    },
  );
  const text = captioned!.parts.flatMap((p) => ("text" in p ? p.text : []));
  assert.deepEqual(text, [...caption, SPECIAL.eodId]);
});
