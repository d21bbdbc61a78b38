// Finite-difference gradient checks for every differentiable op, on every available backend.
// Tolerances (float32 forward, central differences with eps = 1e-2): |numeric − analytic| ≤
// 1e-2·max(1, max|grad|) + 2e-2·|numeric|, unless an op states otherwise below.
import { describe, test } from "node:test";
import * as ops from "../../src/tensor/ops/index.js";
import { Rng } from "../../src/tensor/rng.js";
import { randn, type Tensor } from "../../src/tensor/tensor.js";
import { availableBackends, gradCheck, withBackend } from "../helpers.js";

function r(shape: number[], seed: number, std = 1): Tensor {
  return randn(shape, new Rng(seed), std);
}
function positive(shape: number[], seed: number): Tensor {
  const t = r(shape, seed);
  const d = t.f32;
  for (let i = 0; i < d.length; i++) d[i] = 0.5 + Math.abs(d[i]!);
  return t;
}
function randomMask(B: number, T: number, S: number, seed: number, emptyRow = true): Uint8Array {
  const rng = new Rng(seed);
  const m = new Uint8Array(B * T * S);
  for (let i = 0; i < m.length; i++) m[i] = rng.uniform() < 0.6 ? 1 : 0;
  if (emptyRow) m.fill(0, 0, S); // batch 0, query 0 sees nothing
  return m;
}

for (const be of availableBackends()) {
  describe(`gradients (${be} backend)`, () => {
    const check = (name: string, f: (xs: Tensor[]) => Tensor, inputs: () => Tensor[], o = {}) =>
      test(name, () => withBackend(be, () => gradCheck(f, inputs(), o)));

    // ---- elementwise with broadcasting
    for (const op of ["add", "sub", "mul", "div", "maximum", "minimum"] as const) {
      check(
        `${op} with broadcasting`,
        ([a, b]) => ops[op](a!, b!),
        () => [r([3, 1, 5], 1), op === "div" ? positive([4, 5], 2) : r([4, 5], 2)],
      );
      check(
        `${op} same shape`,
        ([a, b]) => ops[op](a!, b!),
        () => [r([2, 7], 3), op === "div" ? positive([2, 7], 4) : r([2, 7], 4)],
      );
    }
    check(
      "affine",
      ([a]) => ops.affine(a!, -1.5, 0.25),
      () => [r([9], 5)],
    );
    check(
      "pow",
      ([a]) => ops.pow(a!, 2.5),
      () => [positive([3, 4], 6)],
    );
    for (const op of ["exp", "tanh", "sigmoid", "silu", "gelu", "neg", "square"] as const) {
      check(
        op,
        ([a]) => ops[op](a!),
        () => [r([4, 6], 7)],
      );
    }
    for (const op of ["log", "sqrt", "rsqrt"] as const) {
      check(
        op,
        ([a]) => ops[op](a!),
        () => [positive([4, 6], 8)],
      );
    }
    // relu and abs are not differentiable at 0; random normals stay away from it.
    check(
      "relu",
      ([a]) => ops.relu(a!),
      () => [r([4, 6], 9)],
      { eps: 1e-3 },
    );
    check(
      "abs",
      ([a]) => ops.abs(a!),
      () => [r([4, 6], 10)],
      { eps: 1e-3 },
    );

    // ---- reductions
    check(
      "sum over all",
      ([a]) => ops.sum(a!),
      () => [r([3, 4, 5], 11)],
    );
    check(
      "sum over axes keepDims",
      ([a]) => ops.sum(a!, [0, 2], true),
      () => [r([3, 4, 5], 12)],
    );
    check(
      "mean over last axis",
      ([a]) => ops.mean(a!, [-1]),
      () => [r([3, 4, 5], 13)],
    );

    // ---- layout
    check(
      "reshape",
      ([a]) => ops.mul(ops.reshape(a!, [6, -1]), r([6, 4], 14)),
      () => [r([2, 3, 4], 15)],
    );
    check(
      "permute",
      ([a]) => ops.permute(a!, [2, 0, 1]),
      () => [r([2, 3, 4], 16)],
    );
    check(
      "transpose",
      ([a]) => ops.transpose(a!, 0, 2),
      () => [r([2, 3, 4], 17)],
    );
    check(
      "slice",
      ([a]) => ops.slice(a!, 1, 1, 3),
      () => [r([2, 4, 3], 18)],
    );
    check(
      "concat",
      ([a, b]) => ops.concat([a!, b!], 1),
      () => [r([2, 3, 2], 19), r([2, 1, 2], 20)],
    );
    check(
      "stack",
      ([a, b]) => ops.stack([a!, b!], 1),
      () => [r([2, 3], 21), r([2, 3], 22)],
    );
    check(
      "expand",
      ([a]) => ops.expand(a!, [3, 4, 5]),
      () => [r([4, 1], 23)],
    );
    check(
      "gather (embedding)",
      ([t]) => ops.gather(t!, new Int32Array([2, 0, 2, 4])),
      () => [r([5, 3], 24)],
    );
    check(
      "indexAdd (scatter-add)",
      ([b, s]) => ops.indexAdd(b!, new Int32Array([1, 1, 3]), s!),
      () => [r([4, 3], 25), r([3, 3], 26)],
    );

    // ---- matrix products
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        check(
          `matmul 2-D transA=${transA} transB=${transB}`,
          ([a, b]) => ops.matmul(a!, b!, { transA, transB }),
          () => [r(transA ? [5, 3] : [3, 5], 27), r(transB ? [4, 5] : [5, 4], 28)],
        );
        check(
          `batched matmul transA=${transA} transB=${transB}`,
          ([a, b]) => ops.matmul(a!, b!, { transA, transB }),
          () => [r(transA ? [2, 5, 3] : [2, 3, 5], 29), r(transB ? [2, 4, 5] : [2, 5, 4], 30)],
        );
        check(
          `matmul with shared a, transA=${transA} transB=${transB}`,
          ([a, b]) => ops.matmul(a!, b!, { transA, transB }),
          () => [r(transA ? [5, 3] : [3, 5], 31), r(transB ? [2, 4, 5] : [2, 5, 4], 32)],
        );
      }
    }
    check(
      "matmul folded batch (3-D · 2-D)",
      ([a, b]) => ops.matmul(a!, b!),
      () => [r([2, 3, 5], 33), r([5, 4], 34)],
    );
    check(
      "linear with bias",
      ([x, w, b]) => ops.linear(x!, w!, b!),
      () => [r([2, 3, 4], 35), r([5, 4], 36), r([5], 37)],
    );

    // ---- softmax and losses
    check(
      "softmax",
      ([a]) => ops.softmax(a!),
      () => [r([3, 7], 38)],
    );
    check(
      "logSoftmax",
      ([a]) => ops.logSoftmax(a!),
      () => [r([3, 7], 39)],
    );
    check(
      "crossEntropy mean with ignored rows",
      ([a]) => ops.crossEntropy(a!, new Int32Array([3, -1, 0, 6])),
      () => [r([4, 7], 40)],
    );
    check(
      "crossEntropy per row",
      ([a]) => ops.crossEntropy(a!, new Int32Array([1, 2, -1]), "none"),
      () => [r([3, 5], 41)],
    );
    check(
      "mseLoss per sample",
      ([p, t]) => ops.mseLoss(p!, t!, "perSample"),
      () => [r([3, 2, 4], 42), r([3, 2, 4], 43)],
    );

    // ---- normalisation
    check(
      "rmsNorm",
      ([x, w]) => ops.rmsNorm(x!, w!),
      () => [r([3, 8], 44), r([8], 45)],
    );
    check(
      "layerNorm",
      ([x, w, b]) => ops.layerNorm(x!, w!, b!),
      () => [r([3, 8], 46), r([8], 47), r([8], 48)],
    );
    check(
      "groupNorm",
      ([x, w, b]) => ops.groupNorm(x!, 2, w!, b!),
      () => [r([2, 4, 3, 3], 49), r([4], 50), r([4], 51)],
    );

    // ---- transformer ops
    check(
      "rope",
      ([x]) => {
        const { cos, sin } = ops.ropeTables([0, 1, 2, 5], 6);
        return ops.rope(x!, cos, sin);
      },
      () => [r([2, 4, 3, 6], 52)],
    );
    check(
      "attention causal",
      ([q, k, v]) => ops.attention(q!, k!, v!, { causal: true }),
      () => [r([2, 5, 2, 4], 53), r([2, 5, 2, 4], 54), r([2, 5, 2, 4], 55)],
    );
    check(
      "attention with an arbitrary mask and an empty row",
      ([q, k, v]) => ops.attention(q!, k!, v!, { mask: randomMask(2, 4, 6, 56) }),
      () => [r([2, 4, 2, 4], 57), r([2, 6, 2, 4], 58), r([2, 6, 2, 4], 59)],
    );
    check(
      "attention grouped-query, T < S, causal",
      ([q, k, v]) => ops.attention(q!, k!, v!, { causal: true }),
      () => [r([1, 3, 4, 4], 60), r([1, 5, 2, 4], 61), r([1, 5, 2, 4], 62)],
    );
    check(
      "dropout (fixed seed)",
      ([x]) => ops.dropout(x!, 0.3, new Rng(99)),
      () => [r([4, 5], 63)],
    );

    // ---- convolution
    check(
      "conv2d stride 2 pad 1 with bias",
      ([x, w, b]) => ops.conv2d(x!, w!, b!, { stride: 2, pad: 1 }),
      () => [r([2, 3, 5, 5], 64), r([4, 3, 3, 3], 65), r([4], 66)],
    );
    check(
      "conv2d 1×1",
      ([x, w]) => ops.conv2d(x!, w!),
      () => [r([1, 3, 4, 4], 67), r([2, 3, 1, 1], 68)],
    );
    check(
      "upsampleNearest",
      ([x]) => ops.upsampleNearest(x!, 2),
      () => [r([2, 3, 3, 2], 69)],
    );
  });
}
