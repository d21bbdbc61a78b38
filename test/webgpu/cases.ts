/**
 * The WebGPU kernel cases, run inside the test page (page.ts): each case runs the js reference
 * and the WGSL kernel on the same random inputs and returns, per output, the worst error
 * against the tolerance. kernels.test.ts only knows the case names (CASES) and asserts on the
 * summaries the page returns.
 *
 * Tolerances (|gpu − js| ≤ ATOL·max|js| + RTOL·|js| per element; non-finite values must match):
 * - elementwise, layout, optimiser: RTOL 1e-5, ATOL 1e-6 (as the native parity tests); the
 *   transcendental unary ops (WGSL exp/log/tanh are specified to a few ulps plus, for exp,
 *   2 ulps per unit of |x|) get ATOL 1e-5 with RTOL 1e-5.
 * - row reductions (softmax, losses, norms, reduceSum, sumSquares): RTOL 1e-5, ATOL 1e-5 —
 *   the GPU sums in float32 (js: float64), a tree sum of n terms erring by ≈ log2(n) ulps.
 * - gemm-based results (gemm, conv): RTOL 1e-4, ATOL 2e-6·√K, as native (float32 accumulation).
 * - attention: out and lse RTOL 1e-4 (lse 1e-5), ATOL 2e-6·√D; gradients RTOL 1e-4,
 *   ATOL 1e-5·√max(S, D), as native.
 */

import type { AttentionShape, Conv2dGeometry } from "../../src/tensor/backends/backend.js";
import { jsBackend as J } from "../../src/tensor/backends/js.js";
import {
  BINARY_OPS,
  type BinaryOp,
  UNARY_OPS,
  type UnaryOp,
} from "../../src/tensor/backends/ops.js";
import type { WebGpuRuntime } from "../../src/tensor/backends/webgpu/index.js";
import * as G from "../../src/tensor/backends/webgpu/index.js";
import { Rng } from "../../src/tensor/rng.js";
import { attentionShape, randomMask, transfusionMask } from "../attention-cases.js";

/** One compared output: the worst error found and the bound it had to stay under. */
export interface Summary {
  what: string;
  n: number;
  /** max |gpu − js| over the output. */
  maxAbsErr: number;
  /** max |js|, the scale of the absolute tolerance. */
  scale: number;
  /** The worst excess over the bound (≤ 0 passes) and where it happened. */
  failure: string | null;
}

export interface Compared {
  what: string;
  got: Float32Array;
  want: Float32Array;
  rtol: number;
  atol: number;
}

type Run = (rt: WebGpuRuntime) => Promise<Compared[]>;

const RTOL = 1e-5;
const ATOL = 1e-6;
const gemmTol = (K: number): number => 2e-6 * Math.sqrt(Math.max(K, 1));

function randu(seed: number, n: number, lo = -1, hi = 1): Float32Array {
  return new Rng(seed).fillUniform(new Float32Array(n), lo, hi);
}
function randn(seed: number, n: number, std = 1): Float32Array {
  return new Rng(seed).fillNormal(new Float32Array(n), 0, std);
}

/** Returns the comparison summary of one output. */
export function compare(c: Compared): Summary {
  const { got, want, rtol, what } = c;
  let scale = 0;
  for (const w of want) if (Number.isFinite(w)) scale = Math.max(scale, Math.abs(w));
  const atol = c.atol * Math.max(scale, 1e-30);
  let maxAbsErr = 0;
  let failure: string | null = null;
  let worst = 0;
  if (got.length !== want.length) failure = `length ${got.length} ≠ ${want.length}`;
  for (let i = 0; i < want.length && !failure; i++) {
    const g = got[i]!;
    const w = want[i]!;
    if (!Number.isFinite(w) || !Number.isFinite(g)) {
      if (!(g === w || (Number.isNaN(g) && Number.isNaN(w)))) failure = `[${i}]: gpu ${g}, js ${w}`;
      continue;
    }
    const e = Math.abs(g - w);
    maxAbsErr = Math.max(maxAbsErr, e);
    const excess = e - rtol * Math.abs(w) - atol;
    if (excess > worst) {
      worst = excess;
      failure = `[${i}]: gpu ${g}, js ${w} (atol ${atol.toExponential(2)}, rtol ${rtol})`;
    }
  }
  return { what, n: want.length, maxAbsErr, scale, failure };
}

/** A small wrapper: upload host arrays, read buffers back. */
function io(rt: WebGpuRuntime) {
  return {
    up: (a: Float32Array | Int32Array | Uint8Array) => rt.upload(a),
    out: (n: number) => rt.alloc(n),
    get: (b: GPUBuffer, n: number) => rt.read(b, n),
  };
}

const cases: [string, Run][] = [];
const add = (name: string, run: Run) => cases.push([name, run]);

// ---- gemm ---------------------------------------------------------------------------------

for (const [M, N, K] of [
  [1, 1, 1],
  [3, 17, 33],
  [33, 3, 17],
  [17, 33, 1],
  [65, 31, 70],
  [5, 7, 0],
] as const) {
  for (const tA of [false, true]) {
    for (const tB of [false, true]) {
      add(`gemm ${M}×${N}×${K} transA=${tA} transB=${tB}`, async (rt) => {
        const { up, get } = io(rt);
        const lda = (tA ? M : K) + 3;
        const ldb = (tB ? K : N) + 5;
        const ldc = N + 2;
        const [aOff, bOff, cOff] = [7, 3, 11];
        const A = randu(1, aOff + (tA ? K : M) * lda);
        const B = randu(2, bOff + (tB ? N : K) * ldb);
        const C = randu(3, cOff + M * ldc);
        const res: Compared[] = [];
        for (const [alpha, beta] of [
          [1, 0],
          [0.5, 1.5],
          [-2, 1],
        ] as const) {
          const want = C.slice();
          J.gemm(tA, tB, M, N, K, alpha, A, aOff, lda, B, bOff, ldb, beta, want, cOff, ldc);
          const c = up(C);
          G.gemm(
            rt,
            tA,
            tB,
            M,
            N,
            K,
            alpha,
            up(A),
            aOff,
            lda,
            up(B),
            bOff,
            ldb,
            beta,
            c,
            cOff,
            ldc,
          );
          const got = await get(c, C.length);
          res.push({
            what: `C alpha=${alpha} beta=${beta}`,
            got,
            want,
            rtol: 1e-4,
            atol: gemmTol(K),
          });
        }
        return res;
      });
    }
  }
}

add("gemm beta=0 does not read C (NaN in C is overwritten)", async (rt) => {
  const { up, get } = io(rt);
  const [M, N, K] = [6, 7, 5];
  const A = randu(4, M * K);
  const B = randu(5, K * N);
  const want = new Float32Array(M * N);
  J.gemm(false, false, M, N, K, 1, A, 0, K, B, 0, N, 0, want, 0, N);
  const c = up(new Float32Array(M * N).fill(Number.NaN));
  G.gemm(rt, false, false, M, N, K, 1, up(A), 0, K, up(B), 0, N, 0, c, 0, N);
  return [{ what: "C", got: await get(c, M * N), want, rtol: 1e-4, atol: gemmTol(K) }];
});

for (const [batch, M, N, K] of [
  [1, 3, 5, 7],
  [3, 17, 9, 33],
  [2, 33, 17, 65],
] as const) {
  for (const tA of [false, true]) {
    for (const tB of [false, true]) {
      add(`gemmBatched ${batch} of ${M}×${N}×${K} transA=${tA} transB=${tB}`, async (rt) => {
        const { up, get } = io(rt);
        const A = randu(10, batch * M * K);
        const B = randu(11, batch * K * N);
        const C = randu(12, batch * M * N);
        const res: Compared[] = [];
        for (const [what, sB, alpha, beta] of [
          ["strided", K * N, 0.7, 0.3],
          ["shared B", 0, 1, 0],
        ] as const) {
          const want = C.slice();
          J.gemmBatched(tA, tB, M, N, K, alpha, A, M * K, B, sB, beta, want, M * N, batch);
          const c = up(C);
          G.gemmBatched(rt, tA, tB, M, N, K, alpha, up(A), M * K, up(B), sB, beta, c, M * N, batch);
          res.push({ what, got: await get(c, C.length), want, rtol: 1e-4, atol: gemmTol(K) });
        }
        return res;
      });
    }
  }
}

// ---- elementwise --------------------------------------------------------------------------

/** Inputs over each op's interesting range, plus signed zeros and ±∞ (not NaN: see the kernel). */
function unaryInput(n: number, seed: number, positive: boolean): Float32Array {
  const x = positive ? randu(seed, n, 1e-3, 20) : randu(seed, n, -12, 12);
  const specials = positive
    ? [1, 100, 1e-30, Infinity]
    : [0, -0, 1e-7, -1e-7, 0.4, -0.4, 30, -30, 100, -100, Infinity, -Infinity];
  for (let i = 0; i < specials.length && i < n; i++) x[(i * 7919) % n] = specials[i]!;
  return x;
}

const TRANSCENDENTAL = new Set<UnaryOp>(["exp", "log", "tanh", "sigmoid", "silu", "gelu"]);

for (const op of UNARY_OPS) {
  const positive = op === "log" || op === "sqrt" || op === "rsqrt";
  const atol = TRANSCENDENTAL.has(op) ? 1e-5 : ATOL;
  for (const n of [1, 33, 1031]) {
    add(`unary ${op} n=${n}`, async (rt) => {
      const { up, out, get } = io(rt);
      const x = unaryInput(n, 20 + n, positive);
      // exp of +∞/large is +∞ on both sides; keep it: non-finite values must match exactly.
      const y = new Float32Array(n);
      J.unary(op, x, y, n);
      const gy = randn(30 + n, n);
      const gx = new Float32Array(n);
      // Backward at finite points only (∞·0 conventions are not part of the contract).
      const xf = x.map((v) => (Number.isFinite(v) ? v : 1));
      const yf = new Float32Array(n);
      J.unary(op, xf, yf, n);
      J.unaryBackward(op, xf, yf, gy, gx, n);
      const yb = out(n);
      G.unary(rt, op, up(x), yb, n);
      const gb = out(n);
      G.unaryBackward(rt, op, up(xf), up(yf), up(gy), gb, n);
      return [
        { what: "y", got: await get(yb, n), want: y, rtol: RTOL, atol },
        { what: "gx", got: await get(gb, n), want: gx, rtol: RTOL, atol },
      ];
    });
  }
}

/** Broadcast cases: output shape, a's and b's strides per output dimension. */
const BROADCASTS: [string, number[], number[], number[], number, number][] = [
  ["same shape 3×17", [3, 17], [17, 1], [17, 1], 51, 51],
  ["row vector b 5×33", [5, 33], [33, 1], [0, 1], 165, 33],
  ["column a, transposed b 7×3", [7, 3], [1, 0], [1, 7], 7, 21],
  ["rank 4 mixed", [2, 3, 1, 5], [15, 5, 0, 1], [0, 1, 0, 3], 30, 15],
  ["rank 0", [], [], [], 1, 1],
];

for (const op of BINARY_OPS) {
  for (const [name, shape, as, bs, an, bn] of BROADCASTS) {
    add(`binary ${op} ${name}`, async (rt) => {
      const { up, out, get } = io(rt);
      const a = randu(40, an, -2, 2);
      const b = randu(41, bn, 0.5, 2); // away from 0 so div stays tame
      if (op !== "div") for (let i = 0; i < bn; i += 2) b[i] = -b[i]!;
      const n = shape.reduce((s, d) => s * d, 1);
      const want = new Float32Array(n);
      J.binary(op as BinaryOp, a, as, b, bs, want, shape);
      const o = out(n);
      G.binary(rt, op as BinaryOp, up(a), as, up(b), bs, o, shape);
      return [{ what: "out", got: await get(o, n), want, rtol: RTOL, atol: ATOL }];
    });
  }
}

for (const n of [1, 17, 1000]) {
  add(`affine, axpy, fill, pow n=${n}`, async (rt) => {
    const { up, out, get } = io(rt);
    const x = randu(50, n, -3, 3);
    const y = randu(51, n);
    const res: Compared[] = [];
    const w1 = new Float32Array(n);
    J.affine(x, w1, n, 1.5, -0.25);
    const o1 = out(n);
    G.affine(rt, up(x), o1, n, 1.5, -0.25);
    res.push({ what: "affine", got: await get(o1, n), want: w1, rtol: RTOL, atol: ATOL });
    const w2 = y.slice();
    J.axpy(n, -0.75, x, w2);
    const o2 = up(y);
    G.axpy(rt, n, -0.75, up(x), o2);
    res.push({ what: "axpy", got: await get(o2, n), want: w2, rtol: RTOL, atol: ATOL });
    const w3 = new Float32Array(n).fill(2.5);
    const o3 = up(y);
    G.fill(rt, o3, n, 2.5);
    res.push({ what: "fill", got: await get(o3, n), want: w3, rtol: 0, atol: 0 });
    const xs = x.slice();
    xs[0] = 0;
    for (const [p, src] of [
      [2, x],
      [3, xs],
      [-1, xs],
      [0, xs],
      [0.5, x.map(Math.abs)],
      [1.7, xs],
    ] as const) {
      const w4 = new Float32Array(n);
      J.pow(src, w4, n, p);
      const o4 = out(n);
      G.pow(rt, up(src), o4, n, p);
      res.push({ what: `pow ${p}`, got: await get(o4, n), want: w4, rtol: 1e-5, atol: 1e-5 });
    }
    return res;
  });
}

add("grid wraps past 65535 workgroups (affine, crossEntropyBackward)", async (rt) => {
  const { up, out, get } = io(rt);
  const n = 64 * 65535 + 65; // 65537 workgroups of 64
  const x = randu(55, n);
  const want = new Float32Array(n);
  J.affine(x, want, n, 2, 1);
  const o = out(n);
  G.affine(rt, up(x), o, n, 2, 1);
  const [rows, V] = [65537, 2]; // one workgroup per row
  const logits = randn(56, rows * V);
  const targets = new Int32Array(rows).map((_, r) => r % V);
  const loss = new Float32Array(rows);
  const lse = new Float32Array(rows);
  J.crossEntropy(logits, targets, loss, lse, rows, V);
  const gLoss = randu(57, rows);
  const wg = new Float32Array(rows * V);
  J.crossEntropyBackward(logits, targets, lse, gLoss, wg, rows, V);
  const og = out(rows * V);
  G.crossEntropyBackward(rt, up(logits), up(targets), up(lse), up(gLoss), og, rows, V);
  return [
    { what: "affine", got: await get(o, n), want, rtol: RTOL, atol: ATOL },
    { what: "gLogits", got: await get(og, rows * V), want: wg, rtol: RTOL, atol: 1e-5 },
  ];
});

// ---- layout -------------------------------------------------------------------------------

add("copyStrided transpose with offsets, overwrite and accumulate", async (rt) => {
  const { up, get } = io(rt);
  const shape = [3, 5, 7];
  const src = randu(60, 200);
  const dst = randu(61, 120);
  const srcStrides = [1, 3 * 7, 3]; // a permuted view
  const dstStrides = [35, 7, 1];
  const res: Compared[] = [];
  for (const accumulate of [false, true]) {
    const want = dst.slice();
    J.copyStrided(src, 4, srcStrides, want, 9, dstStrides, shape, accumulate);
    const d = up(dst);
    G.copyStrided(rt, up(src), 4, srcStrides, d, 9, dstStrides, shape, accumulate);
    res.push({
      what: `accumulate=${accumulate}`,
      got: await get(d, 120),
      want,
      rtol: RTOL,
      atol: ATOL,
    });
  }
  return res;
});

for (const [name, shape, outStrides, outSize] of [
  ["3×17×5 over axes 0 and 2", [3, 17, 5], [0, 1, 0], 17],
  ["3×17×5 over axis 1", [3, 17, 5], [5, 0, 1], 15],
  ["33×65 everything", [33, 65], [0, 0], 1],
  ["4×9 nothing", [4, 9], [9, 1], 36],
  ["1×1", [1, 1], [0, 0], 1],
] as [string, number[], number[], number][]) {
  add(`reduceSum ${name}`, async (rt) => {
    const { up, get } = io(rt);
    const n = shape.reduce((s, d) => s * d, 1);
    const x = randn(70, n);
    const want = new Float32Array(outSize);
    J.reduceSum(x, shape, want, outStrides, outSize);
    const o = up(new Float32Array(outSize).fill(Number.NaN)); // overwritten
    G.reduceSum(rt, up(x), shape, o, outStrides, outSize);
    return [{ what: "out", got: await get(o, outSize), want, rtol: RTOL, atol: 1e-5 }];
  });
}

add("sumSquares n=1, 33, 4099", async (rt) => {
  const { up, out, get } = io(rt);
  const res: Compared[] = [];
  for (const n of [1, 33, 4099]) {
    const x = randn(80 + n, n);
    const want = new Float32Array(1);
    J.sumSquares(x, n, want, 0);
    const o = out(1);
    G.sumSquares(rt, up(x), n, o);
    res.push({ what: `n=${n}`, got: await get(o, 1), want, rtol: 1e-5, atol: 1e-5 });
  }
  return res;
});

add("gatherRows and scatterAddRows with repeated indices", async (rt) => {
  const { up, out, get } = io(rt);
  const [V, rows, dim] = [11, 17, 33];
  const table = randu(90, V * dim);
  const idx = new Int32Array(rows).map((_, r) => (r * 7) % V);
  idx[3] = idx[4] = 5;
  const want = new Float32Array(rows * dim);
  J.gatherRows(table, idx, want, rows, dim);
  const o = out(rows * dim);
  G.gatherRows(rt, up(table), up(idx), o, rows, dim);
  const gOut = randu(91, rows * dim);
  const gTable = randu(92, V * dim);
  const wantT = gTable.slice();
  J.scatterAddRows(gOut, idx, wantT, rows, dim);
  const t = up(gTable);
  G.scatterAddRows(rt, up(gOut), up(idx), t, rows, dim);
  return [
    { what: "gather", got: await get(o, rows * dim), want, rtol: 0, atol: 0 },
    { what: "scatterAdd", got: await get(t, V * dim), want: wantT, rtol: RTOL, atol: ATOL },
  ];
});

// ---- softmax and losses -------------------------------------------------------------------

for (const [rows, cols] of [
  [1, 1],
  [3, 17],
  [5, 129],
  [2, 1000],
] as const) {
  for (const log of [false, true]) {
    add(`softmax ${rows}×${cols} log=${log} and backward`, async (rt) => {
      const { up, out, get } = io(rt);
      const n = rows * cols;
      const x = randn(100 + cols, n, 3);
      x[0] = 40; // large logits must not overflow
      const y = new Float32Array(n);
      J.softmax(x, y, rows, cols, log);
      const gy = randn(101, n);
      const gx = new Float32Array(n);
      J.softmaxBackward(y, gy, gx, rows, cols, log);
      const yb = out(n);
      G.softmax(rt, up(x), yb, rows, cols, log);
      const gb = out(n);
      G.softmaxBackward(rt, up(y), up(gy), gb, rows, cols, log);
      return [
        { what: "y", got: await get(yb, n), want: y, rtol: RTOL, atol: 1e-5 },
        { what: "gx", got: await get(gb, n), want: gx, rtol: RTOL, atol: 1e-5 },
      ];
    });
  }
}

for (const [rows, V] of [
  [1, 1],
  [5, 17],
  [9, 333],
] as const) {
  add(`crossEntropy rows=${rows} V=${V} and backward (ignored row)`, async (rt) => {
    const { up, out, get } = io(rt);
    const logits = randn(110 + V, rows * V, 2);
    const targets = new Int32Array(rows).map((_, r) => (r * 5) % V);
    if (rows > 2) targets[2] = -1;
    const loss = new Float32Array(rows);
    const lse = new Float32Array(rows);
    J.crossEntropy(logits, targets, loss, lse, rows, V);
    const gLoss = randu(111, rows, 0.5, 1.5);
    const gLogits = new Float32Array(rows * V);
    J.crossEntropyBackward(logits, targets, lse, gLoss, gLogits, rows, V);
    const [lb, sb, gb] = [out(rows), out(rows), out(rows * V)];
    const [xb, tb] = [up(logits), up(targets)];
    G.crossEntropy(rt, xb, tb, lb, sb, rows, V);
    G.crossEntropyBackward(rt, xb, tb, up(lse), up(gLoss), gb, rows, V);
    return [
      { what: "loss", got: await get(lb, rows), want: loss, rtol: RTOL, atol: 1e-5 },
      { what: "lse", got: await get(sb, rows), want: lse, rtol: RTOL, atol: 1e-5 },
      { what: "gLogits", got: await get(gb, rows * V), want: gLogits, rtol: RTOL, atol: 1e-5 },
    ];
  });
}

// ---- normalisation ------------------------------------------------------------------------

// No dim = 1 row: there gx = s·w·gy·eps/(x² + eps) exactly, which float32 (s·w·gy − s³·x·u)
// only gets as cancellation noise; the js reference computes it in float64.
for (const [rows, dim] of [
  [1, 2],
  [3, 17],
  [33, 128],
] as const) {
  add(`rmsnorm rows=${rows} dim=${dim} and backward`, async (rt) => {
    const { up, out, get } = io(rt);
    const n = rows * dim;
    const x = randn(120 + dim, n, 2);
    const w = randu(121, dim, 0.5, 1.5);
    const y = new Float32Array(n);
    const rstd = new Float32Array(rows);
    J.rmsnorm(x, w, y, rstd, rows, dim, 1e-5);
    const gy = randn(122, n);
    const gx = new Float32Array(n);
    const gw0 = randu(123, dim);
    const gw = gw0.slice();
    J.rmsnormBackward(x, w, rstd, gy, gx, gw, rows, dim);
    const [yb, rb, gxb, gwb] = [out(n), out(rows), out(n), up(gw0)];
    const [xb, wb] = [up(x), up(w)];
    G.rmsnorm(rt, xb, wb, yb, rb, rows, dim, 1e-5);
    G.rmsnormBackward(rt, xb, wb, up(rstd), up(gy), gxb, gwb, rows, dim);
    return [
      { what: "y", got: await get(yb, n), want: y, rtol: RTOL, atol: 1e-5 },
      { what: "rstd", got: await get(rb, rows), want: rstd, rtol: RTOL, atol: 1e-5 },
      { what: "gx", got: await get(gxb, n), want: gx, rtol: RTOL, atol: 1e-5 },
      { what: "gw (accumulated)", got: await get(gwb, dim), want: gw, rtol: RTOL, atol: 1e-5 },
    ];
  });
}

for (const [name, N, Gs, channels, spatial] of [
  ["LayerNorm 3×17", 3, 1, 17, 1],
  ["LayerNorm 1×1", 1, 1, 1, 1],
  ["GroupNorm N=2 C=6 G=3 HW=17", 2, 3, 6, 17],
  ["GroupNorm N=1 C=8 G=8 HW=33", 1, 8, 8, 33],
] as const) {
  for (const affine of [true, false]) {
    add(`groupnorm ${name} affine=${affine} and backward`, async (rt) => {
      const { up, out, get } = io(rt);
      const n = N * channels * spatial;
      const x = randn(130 + n, n, 2).map((v) => v + 3); // a non-zero mean
      const w = affine ? randu(131, channels, 0.5, 1.5) : null;
      const b = affine ? randu(132, channels) : null;
      const y = new Float32Array(n);
      const mean = new Float32Array(N * Gs);
      const rstd = new Float32Array(N * Gs);
      J.groupnorm(x, w, b, y, mean, rstd, N, Gs, channels, spatial, 1e-5);
      const gy = randn(133, n);
      const gx = new Float32Array(n);
      const gw0 = randu(134, channels);
      const gb0 = randu(135, channels);
      const [gw, gb] = [gw0.slice(), gb0.slice()];
      J.groupnormBackward(
        x,
        w,
        mean,
        rstd,
        gy,
        gx,
        affine ? gw : null,
        affine ? gb : null,
        N,
        Gs,
        channels,
        spatial,
      );
      const [yb, mb, rb, gxb, gwb, gbb] = [
        out(n),
        out(N * Gs),
        out(N * Gs),
        out(n),
        up(gw0),
        up(gb0),
      ];
      const xb = up(x);
      const wb = w ? up(w) : null;
      G.groupnorm(rt, xb, wb, b ? up(b) : null, yb, mb, rb, N, Gs, channels, spatial, 1e-5);
      G.groupnormBackward(
        rt,
        xb,
        wb,
        up(mean),
        up(rstd),
        up(gy),
        gxb,
        affine ? gwb : null,
        affine ? gbb : null,
        N,
        Gs,
        channels,
        spatial,
      );
      const res: Compared[] = [
        { what: "y", got: await get(yb, n), want: y, rtol: RTOL, atol: 1e-5 },
        { what: "mean", got: await get(mb, N * Gs), want: mean, rtol: RTOL, atol: 1e-5 },
        { what: "rstd", got: await get(rb, N * Gs), want: rstd, rtol: RTOL, atol: 1e-5 },
        { what: "gx", got: await get(gxb, n), want: gx, rtol: RTOL, atol: 1e-5 },
      ];
      if (affine) {
        res.push({ what: "gw", got: await get(gwb, channels), want: gw, rtol: RTOL, atol: 1e-5 });
        res.push({ what: "gb", got: await get(gbb, channels), want: gb, rtol: RTOL, atol: 1e-5 });
      }
      return res;
    });
  }
}

// ---- rope and attention -------------------------------------------------------------------

for (const [rows, H, D] of [
  [1, 1, 2],
  [17, 3, 34],
] as const) {
  for (const inverse of [false, true]) {
    add(`rope rows=${rows} H=${H} D=${D} inverse=${inverse} (and in place)`, async (rt) => {
      const { up, out, get } = io(rt);
      const n = rows * H * D;
      const x = randn(140, n);
      const angles = randu(141, (rows * D) / 2, -3, 3);
      const cos = angles.map(Math.cos);
      const sin = angles.map(Math.sin);
      const want = new Float32Array(n);
      J.rope(x, want, cos, sin, rows, H, D, inverse);
      const [cb, sb] = [up(cos), up(sin)];
      const o = out(n);
      G.rope(rt, up(x), o, cb, sb, rows, H, D, inverse);
      const inPlace = up(x);
      G.rope(rt, inPlace, inPlace, cb, sb, rows, H, D, inverse);
      return [
        { what: "out", got: await get(o, n), want, rtol: RTOL, atol: ATOL },
        { what: "in place", got: await get(inPlace, n), want, rtol: RTOL, atol: ATOL },
      ];
    });
  }
}

for (const c of [
  { name: "tiny", s: attentionShape(1, 1, 1, 1, 1, 1, false) },
  { name: "odd GQA causal", s: attentionShape(1, 3, 5, 3, 1, 17, true) },
  {
    name: "Transfusion mask",
    s: attentionShape(2, 33, 33, 2, 2, 16, false),
    mask: (s: AttentionShape) => transfusionMask(s, 7, 20),
  },
  {
    name: "random mask with empty rows, T<S",
    s: attentionShape(1, 17, 70, 2, 1, 8, false),
    mask: (s: AttentionShape) => randomMask(s, 150, 0.3),
  },
  { name: "GQA H=4 Hkv=2 causal, S>64", s: attentionShape(1, 65, 65, 4, 2, 32, true) },
  { name: "T<S causal (prefix cache)", s: attentionShape(2, 5, 33, 2, 2, 16, true) },
  { name: "decode T=1", s: attentionShape(3, 1, 17, 4, 2, 32, true) },
  { name: "no mask, not causal, D=65", s: attentionShape(1, 9, 13, 1, 1, 65, false) },
  { name: "D=128", s: attentionShape(1, 3, 7, 2, 2, 128, true) },
] as { name: string; s: AttentionShape; mask?: (s: AttentionShape) => Uint8Array }[]) {
  add(`attention ${c.name} and backward`, async (rt) => {
    const { up, out, get } = io(rt);
    const s = c.s;
    const qn = s.B * s.T * s.H * s.D;
    const kn = s.B * s.S * s.Hkv * s.D;
    const rows = s.B * s.H * s.T;
    const q = randn(160, qn);
    const k = randn(161, kn);
    const v = randn(162, kn);
    const mask = c.mask ? c.mask(s) : null;
    const o = new Float32Array(qn);
    const lse = new Float32Array(rows);
    J.attention(q, k, v, mask, o, lse, s);
    const gOut = randn(163, qn);
    const [gq, gk, gv] = [new Float32Array(qn), new Float32Array(kn), new Float32Array(kn)];
    J.attentionBackward(q, k, v, mask, o, lse, gOut, gq, gk, gv, s);
    const [qb, kb, vb] = [up(q), up(k), up(v)];
    const mb = mask ? up(mask) : null;
    const [ob, lb] = [up(new Float32Array(qn).fill(Number.NaN)), out(rows)];
    G.attention(rt, qb, kb, vb, mb, ob, lb, s);
    const nan = (n: number) => up(new Float32Array(n).fill(Number.NaN)); // every entry must be written
    const [gqb, gkb, gvb] = [nan(qn), nan(kn), nan(kn)];
    G.attentionBackward(rt, qb, kb, vb, mb, up(o), up(lse), up(gOut), gqb, gkb, gvb, s);
    const tol = 1e-5 * Math.sqrt(Math.max(s.S, s.D));
    return [
      { what: "out", got: await get(ob, qn), want: o, rtol: 1e-4, atol: gemmTol(s.D) },
      { what: "lse", got: await get(lb, rows), want: lse, rtol: 1e-5, atol: gemmTol(s.D) },
      { what: "gq", got: await get(gqb, qn), want: gq, rtol: 1e-4, atol: tol },
      { what: "gk", got: await get(gkb, kn), want: gk, rtol: 1e-4, atol: tol },
      { what: "gv", got: await get(gvb, kn), want: gv, rtol: 1e-4, atol: tol },
    ];
  });
}

// ---- convolution --------------------------------------------------------------------------

for (const g of [
  [1, 1, 1, 1, 1, 1, 1, 1, 0],
  [2, 3, 9, 9, 5, 3, 3, 1, 1],
  [2, 4, 7, 5, 3, 3, 3, 2, 1],
  [1, 3, 8, 8, 6, 1, 1, 1, 0],
  [1, 2, 17, 17, 4, 4, 4, 4, 0],
] as Conv2dGeometry[]) {
  const [N, Cin, H, W, Cout, kh, kw, stride, pad] = g;
  add(
    `conv2d N=${N} Cin=${Cin} ${H}×${W} Cout=${Cout} k=${kh}×${kw} s=${stride} p=${pad} and backward`,
    async (rt) => {
      const { up, out, get } = io(rt);
      const Ho = Math.floor((H + 2 * pad - kh) / stride) + 1;
      const Wo = Math.floor((W + 2 * pad - kw) / stride) + 1;
      const x = randn(180, N * Cin * H * W);
      const w = randn(181, Cout * Cin * kh * kw);
      const yn = N * Cout * Ho * Wo;
      const y = new Float32Array(yn);
      J.conv2d(x, w, y, ...g);
      const gy = randn(182, yn);
      const gx = new Float32Array(x.length);
      const gw = new Float32Array(w.length);
      J.conv2dBackward(x, w, gy, gx, gw, ...g);
      const [xb, wb] = [up(x), up(w)];
      const yb = out(yn);
      G.conv2d(rt, xb, wb, yb, ...g);
      const [gxb, gwb] = [
        up(new Float32Array(x.length).fill(Number.NaN)),
        up(new Float32Array(w.length).fill(Number.NaN)),
      ];
      G.conv2dBackward(rt, xb, wb, up(gy), gxb, gwb, ...g);
      const K = Cin * kh * kw;
      return [
        { what: "y", got: await get(yb, yn), want: y, rtol: 1e-4, atol: gemmTol(K) },
        {
          what: "gx",
          got: await get(gxb, x.length),
          want: gx,
          rtol: 1e-4,
          atol: gemmTol(Cout * kh * kw),
        },
        {
          what: "gw",
          got: await get(gwb, w.length),
          want: gw,
          rtol: 1e-4,
          atol: gemmTol(N * Ho * Wo),
        },
      ];
    },
  );
}

for (const [NC, H, W, f] of [
  [1, 1, 1, 1],
  [3, 5, 7, 2],
  [2, 4, 3, 3],
] as const) {
  add(`upsampleNearest NC=${NC} ${H}×${W} ×${f} and backward`, async (rt) => {
    const { up, out, get } = io(rt);
    const x = randn(190, NC * H * W);
    const yn = NC * H * W * f * f;
    const y = new Float32Array(yn);
    J.upsampleNearest(x, y, NC, H, W, f);
    const gy = randn(191, yn);
    const gx = new Float32Array(x.length);
    J.upsampleNearestBackward(gy, gx, NC, H, W, f);
    const [yb, gxb] = [out(yn), out(x.length)];
    G.upsampleNearest(rt, up(x), yb, NC, H, W, f);
    G.upsampleNearestBackward(rt, up(gy), gxb, NC, H, W, f);
    return [
      { what: "y", got: await get(yb, yn), want: y, rtol: 0, atol: 0 },
      { what: "gx", got: await get(gxb, x.length), want: gx, rtol: RTOL, atol: ATOL },
    ];
  });
}

// ---- optimiser ----------------------------------------------------------------------------

for (const n of [1, 33, 1000]) {
  add(`adamw n=${n}`, async (rt) => {
    const { up, get } = io(rt);
    const p = randn(200, n);
    const g = randn(201, n);
    const m = randn(202, n, 0.1);
    const v = randu(203, n, 0, 0.01);
    const [wp, wm, wv] = [p.slice(), m.slice(), v.slice()];
    const step = 7;
    const [b1, b2] = [0.9, 0.95];
    const args = [n, 1e-3, b1, b2, 1e-8, 0.1, 1 - b1 ** step, 1 - b2 ** step, 0.5] as const;
    J.adamw(wp, g, wm, wv, ...args);
    const [pb, mb, vb] = [up(p), up(m), up(v)];
    G.adamw(rt, pb, up(g), mb, vb, ...args);
    return [
      { what: "p", got: await get(pb, n), want: wp, rtol: RTOL, atol: ATOL },
      { what: "m", got: await get(mb, n), want: wm, rtol: RTOL, atol: ATOL },
      { what: "v", got: await get(vb, n), want: wv, rtol: RTOL, atol: ATOL },
    ];
  });
}

/** The case names, in order (kernels.test.ts declares one test per name). */
export const CASES: string[] = cases.map(([name]) => name);

/** Runs case `name` on `rt` and returns its summaries (its buffers are left to the GC). */
export async function runCase(rt: WebGpuRuntime, name: string): Promise<Summary[]> {
  const c = cases.find(([n]) => n === name);
  if (!c) throw new Error(`no case ${name}`);
  return (await c[1](rt)).map(compare);
}
