/**
 * The tensor core on a device backend: every differentiable op's output and input gradients,
 * a small Transfusion model training for a few steps, and cached against uncached decoding.
 * Each case runs under whatever backend is active and returns named host arrays read with
 * `await tensor.read()`; the test page (page.ts) runs it under js and then under webgpu and
 * compares the two with `compare` (cases.ts). The js gradients themselves are checked against
 * finite differences in test/tensor/grad.test.ts, so agreement here extends that check to
 * webgpu. Runs in a browser page: no Node imports.
 */

import { packDocuments, type TokenDocument } from "../../src/data/pack.js";
import { cosineSchedule } from "../../src/diffusion/schedule.js";
import { DecodeState } from "../../src/generate/cache.js";
import { readLossValues, transfusionLoss } from "../../src/model/loss.js";
import { Transfusion } from "../../src/model/transfusion.js";
import { type ActiveBackend, setActiveBackend } from "../../src/tensor/backends/current.js";
import { UNARY_OPS } from "../../src/tensor/backends/ops.js";
import { conv2d, upsampleNearest } from "../../src/tensor/ops/conv.js";
import * as E from "../../src/tensor/ops/elementwise.js";
import { matmul } from "../../src/tensor/ops/linalg.js";
import * as N from "../../src/tensor/ops/nn.js";
import { mean, sum } from "../../src/tensor/ops/reduce.js";
import * as S from "../../src/tensor/ops/shape.js";
import { AdamW, clipFactorOf, readGradNorm } from "../../src/tensor/optim.js";
import { withArenaAsync } from "../../src/tensor/pool.js";
import { Rng } from "../../src/tensor/rng.js";
import { intTensor, noGrad, Tensor } from "../../src/tensor/tensor.js";
import { attentionShape, randomMask, transfusionMask } from "../attention-cases.js";
import { tinyConfig, tinyTrainBatch } from "../batches.js";
import { compare, type Summary } from "./cases.js";

/** What a case observed: named host arrays, compared between backends with tolerance `tol`. */
export type Observed = Record<string, Float32Array>;

export interface ModelCase {
  name: string;
  /** Relative and absolute (times the output's scale) tolerance of the comparison. */
  rtol: number;
  atol: number;
  /** Pairs of observed names that must also agree with each other on each backend. */
  same?: [string, string][];
  run: () => Promise<Observed>;
}

export const MODEL_CASES: ModelCase[] = [];

function randn(seed: number, shape: number[], std = 1): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return new Tensor(new Rng(seed).fillNormal(new Float32Array(n), 0, std), shape, true);
}

function positive(seed: number, shape: number[]): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return new Tensor(new Rng(seed).fillUniform(new Float32Array(n), 0.5, 2), shape, true);
}

async function host(x: Tensor | Float32Array | null): Promise<Float32Array> {
  if (x === null) return new Float32Array(0);
  if (x instanceof Float32Array) return x;
  return (await x.read()) as Float32Array;
}

/**
 * Adds a gradient case: `build` makes fresh inputs (requiring gradients) and the output; the
 * case backpropagates Σ out ⊙ r for a fixed random r and reports the output and every input's
 * gradient.
 */
function graph(
  name: string,
  build: () => { inputs: Tensor[]; out: Tensor },
  rtol = 1e-4,
  atol = 1e-5,
): void {
  MODEL_CASES.push({
    name: `grad ${name}`,
    rtol,
    atol,
    run: async () => {
      const { inputs, out } = build();
      const r = new Tensor(new Rng(99).fillNormal(new Float32Array(out.size)), out.shape);
      sum(E.mul(out, r)).backward();
      const seen: Observed = { out: await host(out) };
      for (const [i, x] of inputs.entries()) {
        if (x.requiresGrad)
          seen[`grad ${i}`] = await host(x.grad ? new Tensor(x.grad, x.shape) : null);
      }
      return seen;
    },
  });
}

// ---- elementwise ------------------------------------------------------------------------

for (const op of ["add", "sub", "mul", "div", "maximum", "minimum"] as const) {
  graph(`${op} broadcast [3,1,5]·[4,1]`, () => {
    const a = randn(1, [3, 1, 5]);
    const b = op === "div" ? positive(2, [4, 1]) : randn(2, [4, 1]);
    return { inputs: [a, b], out: E[op](a, b) };
  });
}
graph("maximum with ties", () => {
  const a = new Tensor(Float32Array.of(1, 2, 3, 4), [4], true);
  const b = new Tensor(Float32Array.of(1, 5, 3, 0), [4], true);
  return { inputs: [a, b], out: E.maximum(a, b) };
});
for (const op of UNARY_OPS) {
  graph(op, () => {
    const x = ["log", "sqrt", "rsqrt"].includes(op) ? positive(3, [7, 9]) : randn(3, [7, 9]);
    return { inputs: [x], out: E[op](x) };
  });
}
graph("pow 3", () => {
  const x = randn(4, [33]);
  return { inputs: [x], out: E.pow(x, 3) };
});
graph("affine", () => {
  const x = randn(5, [2, 17]);
  return { inputs: [x], out: E.affine(x, -1.5, 0.25) };
});

// ---- products, reductions, layout -------------------------------------------------------

for (const [tA, tB] of [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
] as const) {
  graph(`matmul batched transA=${tA} transB=${tB}`, () => {
    const a = randn(6, tA ? [2, 5, 3] : [2, 3, 5]);
    const b = randn(7, tB ? [2, 4, 5] : [2, 5, 4]);
    return { inputs: [a, b], out: matmul(a, b, { transA: tA, transB: tB }) };
  });
}
graph("matmul with a shared right operand", () => {
  const a = randn(8, [3, 2, 6]);
  const b = randn(9, [6, 5]);
  return { inputs: [a, b], out: matmul(a, b) };
});
graph("matmul broadcast left operand", () => {
  const a = randn(8, [2, 6]);
  const b = randn(9, [3, 6, 5]);
  return { inputs: [a, b], out: matmul(a, b) };
});
graph("sum and mean over axes", () => {
  const x = randn(10, [3, 4, 5]);
  return { inputs: [x], out: E.add(sum(x, [1], true), mean(x, [1, 2], true)) };
});
graph("permute, slice, concat, expand, reshape", () => {
  const x = randn(11, [2, 3, 4]);
  const y = randn(12, [2, 3, 1]);
  const p = S.permute(x, [2, 0, 1]);
  const s = S.slice(p, 0, 1, 3);
  const c = S.concat([S.reshape(s, [2, 2, 3]), S.expand(S.reshape(y, [2, 1, 3]), [2, 2, 3])], 1);
  return { inputs: [x, y], out: c };
});
graph("gather and indexAdd", () => {
  const table = randn(13, [7, 5]);
  const base = randn(14, [4, 5]);
  const src = randn(15, [3, 5]);
  const g = S.gather(table, intTensor([6, 0, 6, 2], [2, 2]));
  const ia = S.indexAdd(base, Int32Array.of(1, 3, 1), src);
  return { inputs: [table, base, src], out: E.add(S.reshape(g, [4, 5]), ia) };
});

// ---- fused nn ops -------------------------------------------------------------------------

graph("softmax and logSoftmax", () => {
  const x = randn(16, [5, 11], 2);
  return { inputs: [x], out: E.add(N.softmax(x), N.logSoftmax(x)) };
});
for (const reduction of ["mean", "sum", "none"] as const) {
  graph(`crossEntropy ${reduction} with an ignored row`, () => {
    const x = randn(17, [6, 13], 2);
    return {
      inputs: [x],
      out: N.crossEntropy(x, Int32Array.of(3, -1, 12, 0, 5, 5), reduction),
    };
  });
}
graph("mseLoss per sample", () => {
  const a = randn(18, [3, 2, 4]);
  const b = randn(19, [3, 2, 4]);
  return { inputs: [a, b], out: N.mseLoss(a, b, "perSample") };
});
graph("rmsNorm", () => {
  const x = randn(20, [5, 24]);
  const w = randn(21, [24]);
  return { inputs: [x, w], out: N.rmsNorm(x, w) };
});
graph("layerNorm", () => {
  const x = randn(22, [5, 24]);
  const w = randn(23, [24]);
  const b = randn(24, [24]);
  return { inputs: [x, w, b], out: N.layerNorm(x, w, b) };
});
graph("groupNorm", () => {
  const x = randn(25, [2, 6, 3, 3]);
  const w = randn(26, [6]);
  const b = randn(27, [6]);
  return { inputs: [x, w, b], out: N.groupNorm(x, 3, w, b) };
});
graph("rope 2-D tables shared over the batch", () => {
  const x = randn(28, [2, 4, 3, 8]);
  const { cos, sin } = N.ropeTables([0, 1, 2, 3], 8, 100, [3, 2, 1, 0]);
  return { inputs: [x], out: N.rope(x, cos, sin) };
});
graph("attention with the Transfusion mask", () => {
  const q = randn(29, [2, 7, 4, 8]);
  const k = randn(30, [2, 7, 2, 8]);
  const v = randn(31, [2, 7, 2, 8]);
  const mask = transfusionMask(attentionShape(2, 7, 7, 4, 2, 8, false), 2, 5);
  return { inputs: [q, k, v], out: N.attention(q, k, v, { mask }) };
});
graph("attention causal, T < S", () => {
  const q = randn(32, [1, 3, 2, 4]);
  const k = randn(33, [1, 9, 2, 4]);
  const v = randn(34, [1, 9, 2, 4]);
  return { inputs: [q, k, v], out: N.attention(q, k, v, { causal: true }) };
});
graph("attention random mask with empty rows", () => {
  const q = randn(35, [1, 6, 2, 4]);
  const k = randn(36, [1, 5, 1, 4]);
  const v = randn(37, [1, 5, 1, 4]);
  const mask = randomMask(attentionShape(1, 6, 5, 2, 1, 4, false), 3, 0.6);
  return { inputs: [q, k, v], out: N.attention(q, k, v, { mask }) };
});
graph("conv2d stride 2 pad 1 with bias", () => {
  const x = randn(38, [2, 3, 7, 6]);
  const w = randn(39, [4, 3, 3, 3]);
  const b = randn(40, [4]);
  return { inputs: [x, w, b], out: conv2d(x, w, b, { stride: 2, pad: 1 }) };
});
graph("upsampleNearest ×2", () => {
  const x = randn(41, [2, 3, 3, 2]);
  return { inputs: [x], out: upsampleNearest(x, 2) };
});

// ---- a small model --------------------------------------------------------------------------

/** A Transfusion model of width 32 with 4×4×4 latents and 2×2 patches (tinyTrainBatch's). */
function tinyModel(seed: number): Transfusion {
  return new Transfusion(tinyConfig(), new Rng(seed));
}

MODEL_CASES.push({
  name: "a tiny Transfusion model trains 8 AdamW steps to the same losses and weights",
  // Eight steps of Adam at lr 3e-3 magnify last-bit differences of float32 sums (measured:
  // losses within 1e-7 and weights within 4e-5 of their largest magnitude).
  rtol: 1e-4,
  atol: 2e-4,
  run: async () => {
    const model = tinyModel(1);
    const params = model.parameters();
    const opt = new AdamW(params, { lr: 3e-3, weightDecay: 0.1 });
    const schedule = cosineSchedule();
    const losses = { total: [] as number[], lm: [] as number[], image: [] as number[] };
    for (let step = 0; step < 8; step++) {
      await withArenaAsync(async () => {
        const batch = tinyTrainBatch(step, new Rng(100 + step));
        const parts = transfusionLoss(model, batch, schedule, new Rng(200 + step));
        parts.total.backward();
        const [values, norm] = await Promise.all([readLossValues(parts), readGradNorm(params)]);
        opt.update(3e-3, clipFactorOf(norm, 1).factor);
        opt.zeroGrad();
        losses.total.push(values.total);
        losses.lm.push(values.lm);
        losses.image.push(values.image);
      });
    }
    const seen: Observed = {
      "total loss by step": Float32Array.from(losses.total),
      "text loss by step": Float32Array.from(losses.lm),
      "image loss by step": Float32Array.from(losses.image),
    };
    for (const [name, p] of model.namedParameters()) seen[name] = await host(p);
    return seen;
  },
});

const SPECIAL = { boiId: 1, eoiId: 2, padId: 0, eodId: 3 };

/** Logits at the last position of `doc`, computed by the full (uncached) forward pass. */
function uncachedLogits(m: Transfusion, doc: TokenDocument, latents: Float32Array): Tensor {
  const len = doc.segments.reduce((s, g) => s + ("text" in g ? g.text.length : 4 + 2), 0);
  const { layout } = packDocuments(
    [doc],
    { seqLen: len, gridH: 2, gridW: 2, boiId: 1, eoiId: 2, padId: 0 },
    1,
  );
  const t = layout.images.map(() => 0);
  const xt = layout.images.length ? new Tensor(latents, [layout.images.length, 4, 4, 4]) : null;
  return noGrad(() => m.forward(layout, xt, t, { textRows: Int32Array.of(len - 1) })).textLogits!;
}

MODEL_CASES.push({
  name: "cached decoding gives the uncached logits (mixed prompt, three tokens)",
  rtol: 1e-4,
  atol: 1e-4,
  same: [1, 2, 3].map((k) => [`step ${k}: cached`, `step ${k}: uncached`]),
  run: async () => {
    const m = tinyModel(4);
    const rng = new Rng(8);
    for (const p of m.parameters()) if (p.rank >= 2) rng.fillNormal(p.f32, 0, 0.25);
    const latent = new Rng(1).fillNormal(new Float32Array(64));
    const prompt: TokenDocument = {
      segments: [{ text: [9, 4] }, { image: 0, t: 0 }, { text: [11] }],
    };
    const state = new DecodeState(m, 1, 40);
    const seen: Observed = {};
    const sofar = [...prompt.segments];
    let cached = state.prefill([prompt], latent, SPECIAL);
    for (const [k, tok] of [12, 13, 14].entries()) {
      seen[`step ${k + 1}: cached`] = await host(cached);
      seen[`step ${k + 1}: uncached`] = await host(uncachedLogits(m, { segments: sofar }, latent));
      cached = state.appendTokens(Int32Array.of(tok));
      sofar.push({ text: [tok] });
    }
    return seen;
  },
});

/**
 * Runs the model case named `name` under `reference` (js) and then under `device`, and returns
 * the comparison of every observed array (device against reference), then of each `same` pair
 * on the device. Leaves `reference` active.
 */
export async function compareModelCase(
  name: string,
  reference: ActiveBackend,
  device: ActiveBackend,
): Promise<Summary[]> {
  const c = MODEL_CASES.find((m) => m.name === name);
  if (!c) throw new Error(`no model case "${name}"`);
  setActiveBackend(reference);
  const want = await c.run();
  setActiveBackend(device);
  let got: Observed;
  try {
    got = await c.run();
  } finally {
    setActiveBackend(reference);
  }
  const { rtol, atol } = c;
  const summaries = Object.keys(want).map((what) =>
    compare({ what, got: got[what] ?? new Float32Array(0), want: want[what]!, rtol, atol }),
  );
  for (const [a, b] of c.same ?? []) {
    summaries.push(
      compare({ what: `device ${a} = ${b}`, got: got[a]!, want: got[b]!, rtol, atol }),
    );
  }
  return summaries;
}
