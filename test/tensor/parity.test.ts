/**
 * The native backend against the js reference, kernel by kernel, on tiny, odd-sized and
 * realistic shapes, with offsets, leading dimensions, broadcasting and accumulate flags.
 *
 * Tolerances (|native − js| ≤ ATOL + RTOL·|js| per element, NaN/±∞ must match exactly):
 * - Elementwise, softmax, norms, layout, optimiser: RTOL 1e-5 and ATOL 1e-6 × the largest
 *   |js| value of the output. Both sides round to float32 once per result; the native
 *   transcendental functions are within a few ulps (≈3e-7 relative).
 * - gemm-based results (gemm, conv, attention): the native side accumulates in float32
 *   (OpenBLAS) while js uses float64, so the error grows like √K: ATOL = 2e-6·√K × the
 *   largest |js| value, RTOL 1e-4.
 * - Attention gradients chain three products (P, dP, dS): ATOL 1e-5·√S × the largest |js|.
 * The whole file is skipped when the addon is not built (`npm run build:native`).
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  type AttentionShape,
  type Backend,
  BINARY_OPS,
  UNARY_OPS,
} from "../../src/tensor/backends/backend.js";
import { jsBackend as J } from "../../src/tensor/backends/js.js";
import { loadNativeBackend } from "../../src/tensor/backends/native.js";
import { Rng } from "../../src/tensor/rng.js";
import { attentionShape, randomMask, transfusionMask } from "../attention-cases.js";

const loaded = loadNativeBackend();
const N: Backend | null = loaded.backend;
const SKIP = N ? false : `native backend not built (${loaded.error})`;

const RTOL = 1e-5;
const ATOL = 1e-6;

// ---- helpers ----------------------------------------------------------------------------

function randu(seed: number, n: number, lo = -1, hi = 1): Float32Array {
  return new Rng(seed).fillUniform(new Float32Array(n), lo, hi);
}

function randn(seed: number, n: number, std = 1): Float32Array {
  return new Rng(seed).fillNormal(new Float32Array(n), 0, std);
}

function maxAbs(x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) if (Number.isFinite(x[i]!)) m = Math.max(m, Math.abs(x[i]!));
  return m;
}

/**
 * Asserts |got − want| ≤ atolScale·max|want| + rtol·|want| elementwise (non-finite values
 * must match exactly; NaN matches NaN).
 */
function close(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  what: string,
  rtol = RTOL,
  atolScale = ATOL,
): void {
  assert.equal(got.length, want.length, `${what}: length`);
  const atol = atolScale * Math.max(maxAbs(want), 1e-30);
  let worst = -1;
  let worstErr = 0;
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    if (!Number.isFinite(w) || !Number.isFinite(g)) {
      if (!(g === w || (Number.isNaN(g) && Number.isNaN(w)))) {
        assert.fail(`${what}[${i}]: native ${g}, js ${w}`);
      }
      continue;
    }
    const err = Math.abs(g - w) - rtol * Math.abs(w);
    if (err > worstErr) {
      worstErr = err;
      worst = i;
    }
  }
  if (worst >= 0 && worstErr > atol) {
    assert.fail(
      `${what}[${worst}]: native ${got[worst]}, js ${want[worst]} (atol ${atol.toExponential(2)})`,
    );
  }
}

/** Runs `fn` on both backends with fresh copies of `inputs` and compares every output. */
function both(
  what: string,
  inputs: Float32Array[],
  fn: (be: Backend, arrays: Float32Array[]) => void,
  outIdx: number[],
  rtol = RTOL,
  atolScale = ATOL,
): void {
  const a = inputs.map((x) => x.slice());
  const b = inputs.map((x) => x.slice());
  fn(J, a);
  fn(N!, b);
  for (const i of outIdx) close(b[i]!, a[i]!, `${what} (array ${i})`, rtol, atolScale);
}

const gemmTol = (K: number): number => 2e-6 * Math.sqrt(Math.max(K, 1));

// ---- dense linear algebra ---------------------------------------------------------------

describe("parity: gemm", { skip: SKIP }, () => {
  const shapes: [number, number, number][] = [
    [1, 1, 1],
    [3, 17, 33],
    [65, 33, 17],
    [1, 129, 64],
    [100, 1, 7],
    [1, 1024, 100],
    [700, 1, 129],
    [33, 65, 0],
    [512, 768, 256],
  ];
  for (const [M, Nn, K] of shapes) {
    for (const tA of [false, true]) {
      for (const tB of [false, true]) {
        test(`gemm ${M}×${Nn}×${K} transA=${tA} transB=${tB}`, () => {
          // Padded leading dimensions and offsets, so strides and offsets are exercised.
          const lda = (tA ? M : K) + 3;
          const ldb = (tB ? K : Nn) + 5;
          const ldc = Nn + 2;
          const aOff = 7;
          const bOff = 3;
          const cOff = 11;
          const A = randu(1, aOff + (tA ? K : M) * lda);
          const B = randu(2, bOff + (tB ? Nn : K) * ldb);
          const C = randu(3, cOff + M * ldc);
          for (const [alpha, beta] of [
            [1, 0],
            [0.5, 1.5],
            [-2, 1],
          ] as const) {
            both(
              `alpha=${alpha} beta=${beta}`,
              [A, B, C],
              (be, [a, b, c]) =>
                be.gemm(tA, tB, M, Nn, K, alpha, a!, aOff, lda, b!, bOff, ldb, beta, c!, cOff, ldc),
              [2],
              1e-4,
              gemmTol(K),
            );
          }
        });
      }
    }
  }

  test("gemm with beta = 0 does not read C (NaN in C is overwritten)", () => {
    // Small, matrix-vector (one row / one column) and threaded products take different paths.
    for (const [M, Nn, K] of [
      [6, 7, 5],
      [1, 1024, 100],
      [700, 1, 129],
      [300, 300, 300],
    ] as const) {
      const A = randu(4, M * K);
      const B = randu(5, K * Nn);
      const c = new Float32Array(M * Nn).fill(Number.NaN);
      N!.gemm(false, false, M, Nn, K, 1, A, 0, K, B, 0, Nn, 0, c, 0, Nn);
      assert.ok(
        c.every((v) => Number.isFinite(v)),
        `${M}×${Nn}×${K}`,
      );
    }
  });

  test("gemm reads subarray views at their byte offset", () => {
    const base = randu(6, 200);
    const A = base.subarray(13, 13 + 4 * 6);
    const B = base.subarray(50, 50 + 6 * 5);
    both(
      "views",
      [new Float32Array(4 * 5)],
      (be, [c]) => be.gemm(false, false, 4, 5, 6, 1, A, 0, 6, B, 0, 5, 0, c!, 0, 5),
      [0],
      1e-4,
      gemmTol(6),
    );
  });
});

describe("parity: gemmBatched", { skip: SKIP }, () => {
  const cases: [number, number, number, number][] = [
    [1, 3, 5, 7],
    [3, 17, 9, 33],
    [4, 64, 64, 64],
    [7, 65, 33, 17],
    [2, 256, 128, 192],
  ];
  for (const [batch, M, Nn, K] of cases) {
    for (const tA of [false, true]) {
      for (const tB of [false, true]) {
        test(`batch ${batch} of ${M}×${Nn}×${K} transA=${tA} transB=${tB}`, () => {
          const A = randu(10, batch * M * K);
          const B = randu(11, batch * K * Nn);
          const C = randu(12, batch * M * Nn);
          both(
            "strided",
            [A, B, C],
            (be, [a, b, c]) =>
              be.gemmBatched(tA, tB, M, Nn, K, 0.7, a!, M * K, b!, K * Nn, 0.3, c!, M * Nn, batch),
            [2],
            1e-4,
            gemmTol(K),
          );
          // strideB = 0: one B shared by every product.
          both(
            "shared B",
            [A, B, C],
            (be, [a, b, c]) =>
              be.gemmBatched(tA, tB, M, Nn, K, 1, a!, M * K, b!, 0, 0, c!, M * Nn, batch),
            [2],
            1e-4,
            gemmTol(K),
          );
          // strideC = 0 with beta = 1: every product accumulates into the same C, in order.
          both(
            "accumulating C",
            [A, B, C],
            (be, [a, b, c]) =>
              be.gemmBatched(tA, tB, M, Nn, K, 1, a!, M * K, b!, K * Nn, 1, c!, 0, batch),
            [2],
            1e-4,
            gemmTol(K * batch),
          );
        });
      }
    }
  }
});

// ---- elementwise ------------------------------------------------------------------------

/** Values covering the interesting ranges of every unary op, plus signed zeros and infinities. */
function unaryInput(n: number, seed: number, positive: boolean): Float32Array {
  const x = positive ? randu(seed, n, 1e-3, 20) : randu(seed, n, -12, 12);
  const specials = positive
    ? [0, 1e-30, 1, 100, Infinity]
    : [0, -0, 1e-7, -1e-7, 0.4, -0.4, 30, -30, 100, -100, Infinity, -Infinity];
  for (let i = 0; i < specials.length && i < n; i++) x[(i * 7919) % n] = specials[i]!;
  return x;
}

describe("parity: elementwise", { skip: SKIP }, () => {
  for (const op of UNARY_OPS) {
    const positive = op === "log" || op === "sqrt" || op === "rsqrt";
    for (const n of [1, 17, 100_003]) {
      test(`unary ${op} n=${n}`, () => {
        const x = unaryInput(n, 20 + n, positive);
        both(
          op,
          [x, new Float32Array(n)],
          (be, [a, out]) => be.unary(op, a!, out!, n),
          [1],
          1e-5,
          1e-6,
        );
      });
      test(`unaryBackward ${op} n=${n}`, () => {
        const x = unaryInput(n, 30 + n, positive);
        for (let i = 0; i < n; i++) if (!Number.isFinite(x[i]!)) x[i] = 3; // derivative at ±∞ is 0·∞
        const y = new Float32Array(n);
        J.unary(op, x, y, n);
        const gy = randu(31, n);
        both(
          op,
          [x, y, gy, new Float32Array(n)],
          (be, [a, b, g, gx]) => be.unaryBackward(op, a!, b!, g!, gx!, n),
          [3],
          1e-5,
          1e-6,
        );
      });
    }
  }

  const patterns: {
    name: string;
    shape: number[];
    a: number[];
    b: number[];
    aLen: number;
    bLen: number;
  }[] = [
    { name: "same shape", shape: [3, 17], a: [17, 1], b: [17, 1], aLen: 51, bLen: 51 },
    { name: "row vector", shape: [33, 65], a: [65, 1], b: [0, 1], aLen: 33 * 65, bLen: 65 },
    { name: "column vector", shape: [33, 65], a: [65, 1], b: [1, 0], aLen: 33 * 65, bLen: 33 },
    { name: "scalar a", shape: [5, 7], a: [0, 0], b: [7, 1], aLen: 1, bLen: 35 },
    {
      name: "4-d mixed",
      shape: [2, 3, 4, 5],
      a: [60, 20, 5, 1],
      b: [0, 4, 1, 0],
      aLen: 120,
      bLen: 12,
    },
    {
      name: "4-d bias",
      shape: [2, 3, 4, 5],
      a: [60, 20, 5, 1],
      b: [0, 5, 0, 1],
      aLen: 120,
      bLen: 15,
    },
    { name: "transposed a", shape: [17, 33], a: [1, 17], b: [33, 1], aLen: 17 * 33, bLen: 17 * 33 },
    { name: "rank 0", shape: [], a: [], b: [], aLen: 1, bLen: 1 },
    { name: "empty", shape: [3, 0, 2], a: [0, 2, 1], b: [0, 2, 1], aLen: 6, bLen: 6 },
    {
      name: "large same shape",
      shape: [300, 400],
      a: [400, 1],
      b: [400, 1],
      aLen: 120_000,
      bLen: 120_000,
    },
    {
      name: "large row vector",
      shape: [512, 768],
      a: [768, 1],
      b: [0, 1],
      aLen: 512 * 768,
      bLen: 768,
    },
    {
      name: "large few long runs",
      shape: [2, 70_000],
      a: [70_000, 1],
      b: [0, 1],
      aLen: 140_000,
      bLen: 70_000,
    },
  ];
  for (const p of patterns) {
    for (const op of BINARY_OPS) {
      test(`binary ${op} ${p.name}`, () => {
        const a = randu(40, p.aLen, -2, 2);
        const b = randu(41, p.bLen, 0.5, 2); // away from 0 so div stays tame
        if (p.bLen > 3) {
          b[1] = Number.NaN;
          b[2] = -0;
          a[2 % p.aLen] = 0;
        }
        const size = p.shape.reduce((s, d) => s * d, 1);
        both(
          `${op}`,
          [a, b, new Float32Array(size)],
          (be, [x, y, out]) => be.binary(op, x!, p.a, y!, p.b, out!, p.shape),
          [2],
        );
      });
    }
  }

  test("binary max/min follow Math.max/Math.min on NaN and signed zeros", () => {
    const a = Float32Array.from([0, -0, Number.NaN, 1, -0, 2]);
    const b = Float32Array.from([-0, 0, 1, Number.NaN, -0, 2]);
    for (const op of ["max", "min"] as const) {
      both(
        op,
        [a, b, new Float32Array(6)],
        (be, [x, y, out]) => be.binary(op, x!, [1], y!, [1], out!, [6]),
        [2],
      );
      const out = new Float32Array(6);
      N!.binary(op, a, [1], b, [1], out, [6]);
      const ref = a.map((v, i) => Math[op](v, b[i]!));
      for (let i = 0; i < 6; i++)
        assert.ok(Object.is(out[i], ref[i]), `${op}[${i}]: ${out[i]} vs ${ref[i]}`);
    }
  });

  for (const n of [1, 17, 100_003]) {
    test(`affine, axpy, fill n=${n}`, () => {
      const x = randu(50, n);
      both(
        "affine",
        [x, new Float32Array(n)],
        (be, [a, out]) => be.affine(a!, out!, n, 0.1, -3.7),
        [1],
      );
      both("axpy", [x, randu(51, n)], (be, [a, y]) => be.axpy(n, -0.3, a!, y!), [1]);
      both("fill", [randu(52, n + 3)], (be, [out]) => be.fill(out!, n, 2.5), [0]);
    });
    for (const p of [2, 0.5, 1, 3, -1.5, 0, 0.3, Number.NaN, Infinity]) {
      test(`pow p=${p} n=${n}`, () => {
        const x = randu(53 + n, n, -3, 3);
        const specials = [0, -0, 1, -1, -Infinity, Infinity, Number.NaN];
        for (let i = 0; i < specials.length && i < n; i++) x[(i * 3) % n] = specials[i]!;
        both(`pow ${p}`, [x, new Float32Array(n)], (be, [a, out]) => be.pow(a!, out!, n, p), [1]);
      });
    }
  }
});

// ---- layout -----------------------------------------------------------------------------

describe("parity: layout", { skip: SKIP }, () => {
  const copies: {
    name: string;
    shape: number[];
    src: number[];
    dst: number[];
    srcOff: number;
    dstOff: number;
    srcLen: number;
    dstLen: number;
  }[] = [
    {
      name: "contiguous with offsets",
      shape: [3, 17],
      src: [17, 1],
      dst: [17, 1],
      srcOff: 5,
      dstOff: 2,
      srcLen: 60,
      dstLen: 60,
    },
    {
      name: "2-d transpose",
      shape: [65, 33],
      src: [1, 65],
      dst: [33, 1],
      srcOff: 0,
      dstOff: 0,
      srcLen: 65 * 33,
      dstLen: 65 * 33,
    },
    {
      name: "2-d transpose into strided",
      shape: [33, 65],
      src: [65, 1],
      dst: [1, 40],
      srcOff: 0,
      dstOff: 1,
      srcLen: 33 * 65,
      dstLen: 65 * 40 + 1,
    },
    {
      name: "BTHD → BHTD",
      shape: [2, 4, 17, 8],
      src: [17 * 4 * 8, 8, 4 * 8, 1],
      dst: [4 * 17 * 8, 17 * 8, 8, 1],
      srcOff: 0,
      dstOff: 0,
      srcLen: 2 * 17 * 4 * 8,
      dstLen: 2 * 17 * 4 * 8,
    },
    {
      name: "broadcast source",
      shape: [5, 9],
      src: [0, 1],
      dst: [9, 1],
      srcOff: 3,
      dstOff: 0,
      srcLen: 12,
      dstLen: 45,
    },
    {
      name: "flip (negative stride)",
      shape: [4, 6],
      src: [6, -1],
      dst: [6, 1],
      srcOff: 5,
      dstOff: 0,
      srcLen: 24,
      dstLen: 24,
    },
    { name: "rank 0", shape: [], src: [], dst: [], srcOff: 4, dstOff: 2, srcLen: 5, dstLen: 3 },
    {
      name: "large transpose",
      shape: [512, 384],
      src: [1, 512],
      dst: [384, 1],
      srcOff: 0,
      dstOff: 0,
      srcLen: 512 * 384,
      dstLen: 512 * 384,
    },
    {
      name: "large permute",
      shape: [8, 4, 256, 64],
      src: [256 * 4 * 64, 64, 4 * 64, 1],
      dst: [4 * 256 * 64, 256 * 64, 64, 1],
      srcOff: 0,
      dstOff: 0,
      srcLen: 8 * 256 * 4 * 64,
      dstLen: 8 * 256 * 4 * 64,
    },
    {
      name: "large 1-d",
      shape: [200_000],
      src: [1],
      dst: [1],
      srcOff: 1,
      dstOff: 0,
      srcLen: 200_001,
      dstLen: 200_000,
    },
  ];
  for (const c of copies) {
    for (const accumulate of [false, true]) {
      test(`copyStrided ${c.name} accumulate=${accumulate}`, () => {
        both(
          "copy",
          [randu(60, c.srcLen), randu(61, c.dstLen)],
          (be, [s, d]) =>
            be.copyStrided(s!, c.srcOff, c.src, d!, c.dstOff, c.dst, c.shape, accumulate),
          [1],
        );
      });
    }
  }
  test("copyStrided accumulating into a broadcast destination sums (dst stride 0)", () => {
    both(
      "sum into dst",
      [randu(62, 7 * 9), randu(63, 9)],
      (be, [s, d]) => be.copyStrided(s!, 0, [9, 1], d!, 0, [0, 1], [7, 9], true),
      [1],
    );
  });

  const reductions: { name: string; shape: number[]; out: number[]; outSize: number }[] = [
    { name: "[R,C]→[C]", shape: [33, 17], out: [0, 1], outSize: 17 },
    { name: "[R,C]→[R]", shape: [33, 17], out: [1, 0], outSize: 33 },
    { name: "full", shape: [3, 5, 7], out: [0, 0, 0], outSize: 1 },
    { name: "[A,B,C]→[A,1,C]", shape: [3, 5, 7], out: [7, 0, 1], outSize: 21 },
    { name: "[A,B,C]→[1,B,1]", shape: [3, 5, 7], out: [0, 1, 0], outSize: 5 },
    { name: "rank 0", shape: [], out: [], outSize: 1 },
    { name: "empty", shape: [4, 0], out: [1, 0], outSize: 4 },
    { name: "large bias grad", shape: [2048, 256], out: [0, 1], outSize: 256 },
    { name: "large row sums", shape: [1024, 300], out: [1, 0], outSize: 1024 },
    { name: "large full", shape: [1_000_003], out: [0], outSize: 1 },
    {
      name: "large mild [2,T,C]→[T,C]",
      shape: [2, 512, 256],
      out: [0, 256, 1],
      outSize: 512 * 256,
    },
    { name: "large [B,C,HW]→[C]", shape: [16, 32, 1024], out: [0, 1, 0], outSize: 32 },
  ];
  for (const r of reductions) {
    test(`reduceSum ${r.name}`, () => {
      const n = r.shape.reduce((s, d) => s * d, 1);
      both(
        "reduce",
        [randu(70, n), randu(71, r.outSize)],
        (be, [x, out]) => be.reduceSum(x!, r.shape, out!, r.out, r.outSize),
        [1],
        1e-5,
        1e-6,
      );
    });
  }

  for (const n of [0, 17, 1_000_003]) {
    test(`sumSquares n=${n}`, () => {
      const x = randu(80, n + 1);
      const out = new Float32Array(4);
      J.sumSquares(x, n, out, 1);
      N!.sumSquares(x, n, out, 2);
      // Both round a float64 sum to float32: equal unless the sums straddle a rounding edge.
      const [a, b] = [out[1]!, out[2]!];
      assert.ok(Math.abs(a - b) <= 1.2e-7 * Math.max(1, Math.abs(a)), `${b} vs ${a}`);
    });
  }

  for (const [rows, dim, tableRows] of [
    [1, 1, 1],
    [17, 33, 5],
    [2048, 256, 300],
  ] as const) {
    test(`gatherRows / scatterAddRows rows=${rows} dim=${dim}`, () => {
      const idx = new Int32Array(rows);
      const rng = new Rng(90);
      for (let r = 0; r < rows; r++) idx[r] = rng.int(tableRows); // repeats included
      const table = randu(91, tableRows * dim);
      both(
        "gather",
        [table, new Float32Array(rows * dim)],
        (be, [t, out]) => be.gatherRows(t!, idx, out!, rows, dim),
        [1],
      );
      both(
        "scatter",
        [randu(92, rows * dim), randu(93, tableRows * dim)],
        (be, [g, gt]) => be.scatterAddRows(g!, idx, gt!, rows, dim),
        [1],
      );
    });
  }
});

// ---- softmax and losses -----------------------------------------------------------------

describe("parity: softmax and cross-entropy", { skip: SKIP }, () => {
  for (const [rows, cols] of [
    [1, 1],
    [3, 17],
    [65, 1000],
    [512, 512],
  ] as const) {
    for (const log of [false, true]) {
      test(`softmax ${rows}×${cols} log=${log}`, () => {
        const x = randn(100, rows * cols, 4);
        if (cols > 2) x[1] = Number.NEGATIVE_INFINITY; // a masked entry
        both(
          "fwd",
          [x, new Float32Array(rows * cols)],
          (be, [a, out]) => be.softmax(a!, out!, rows, cols, log),
          [1],
        );
        const y = new Float32Array(rows * cols);
        J.softmax(x, y, rows, cols, log);
        for (let i = 0; i < y.length; i++) if (!Number.isFinite(y[i]!)) y[i] = -50;
        both(
          "bwd",
          [y, randn(101, rows * cols), new Float32Array(rows * cols)],
          (be, [yy, gy, gx]) => be.softmaxBackward(yy!, gy!, gx!, rows, cols, log),
          [2],
        );
      });
    }
  }

  for (const [rows, V] of [
    [1, 1],
    [17, 33],
    [256, 5000],
  ] as const) {
    test(`crossEntropy rows=${rows} V=${V}`, () => {
      const logits = randn(110, rows * V, 3);
      const targets = new Int32Array(rows);
      const rng = new Rng(111);
      for (let r = 0; r < rows; r++) targets[r] = r % 5 === 3 ? -1 : rng.int(V);
      both(
        "fwd",
        [logits, new Float32Array(rows), new Float32Array(rows)],
        (be, [x, loss, lse]) => be.crossEntropy(x!, targets, loss!, lse!, rows, V),
        [1, 2],
      );
      const lse = new Float32Array(rows);
      J.crossEntropy(logits, targets, new Float32Array(rows), lse, rows, V);
      both(
        "bwd",
        [logits, lse, randu(112, rows), new Float32Array(rows * V)],
        (be, [x, l, gl, g]) => be.crossEntropyBackward(x!, targets, l!, gl!, g!, rows, V),
        [3],
      );
    });
  }
});

// ---- normalisation ----------------------------------------------------------------------

describe("parity: normalisation", { skip: SKIP }, () => {
  for (const [rows, dim] of [
    [1, 1],
    [3, 17],
    [2048, 256],
  ] as const) {
    test(`rmsnorm rows=${rows} dim=${dim}`, () => {
      const x = randn(120, rows * dim, 2);
      const w = randu(121, dim, 0.5, 1.5);
      both(
        "fwd",
        [x, w, new Float32Array(rows * dim), new Float32Array(rows)],
        (be, [a, ww, out, r]) => be.rmsnorm(a!, ww!, out!, r!, rows, dim, 1e-5),
        [2, 3],
      );
      const rstd = new Float32Array(rows);
      J.rmsnorm(x, w, new Float32Array(rows * dim), rstd, rows, dim, 1e-5);
      both(
        "bwd",
        [x, w, rstd, randn(122, rows * dim), new Float32Array(rows * dim), randu(123, dim)],
        (be, [a, ww, r, gy, gx, gw]) => be.rmsnormBackward(a!, ww!, r!, gy!, gx!, gw!, rows, dim),
        [4, 5],
        1e-5,
        1e-5,
      );
    });
  }

  const groups: { name: string; N: number; G: number; channels: number; spatial: number }[] = [
    { name: "LayerNorm 1×1", N: 1, G: 1, channels: 1, spatial: 1 },
    { name: "LayerNorm 33×65", N: 33, G: 1, channels: 65, spatial: 1 },
    { name: "GroupNorm 2×8(4)×17", N: 2, G: 4, channels: 8, spatial: 17 },
    { name: "GroupNorm 16×64(32)×256", N: 16, G: 32, channels: 64, spatial: 256 },
    { name: "LayerNorm 1024×256", N: 1024, G: 1, channels: 256, spatial: 1 },
  ];
  for (const g of groups) {
    for (const affine of [true, false]) {
      test(`groupnorm ${g.name} affine=${affine}`, () => {
        const n = g.N * g.channels * g.spatial;
        const x = randn(130, n, 3);
        for (let i = 0; i < n; i++) x[i] = x[i]! + 5; // an offset mean exercises the two-pass variance
        const w = affine ? randu(131, g.channels, 0.5, 1.5) : null;
        const b = affine ? randu(132, g.channels) : null;
        const stats = g.N * g.G;
        const run = (be: Backend) => {
          const out = new Float32Array(n);
          const mean = new Float32Array(stats);
          const rstd = new Float32Array(stats);
          be.groupnorm(x, w, b, out, mean, rstd, g.N, g.G, g.channels, g.spatial, 1e-5);
          return { out, mean, rstd };
        };
        const rj = run(J);
        const rn = run(N!);
        close(rn.out, rj.out, "out");
        close(rn.mean, rj.mean, "mean");
        close(rn.rstd, rj.rstd, "rstd");
        const gy = randn(133, n);
        const back = (be: Backend) => {
          const gx = new Float32Array(n);
          const gw = affine ? randu(134, g.channels) : null;
          const gb = affine ? randu(135, g.channels) : null;
          be.groupnormBackward(
            x,
            w,
            rj.mean,
            rj.rstd,
            gy,
            gx,
            gw,
            gb,
            g.N,
            g.G,
            g.channels,
            g.spatial,
          );
          return { gx, gw, gb };
        };
        const bj = back(J);
        const bn = back(N!);
        close(bn.gx, bj.gx, "gx", 1e-5, 1e-5);
        if (affine) {
          close(bn.gw!, bj.gw!, "gw", 1e-5, 1e-5);
          close(bn.gb!, bj.gb!, "gb", 1e-5, 1e-5);
        }
      });
    }
  }
});

// ---- transformer kernels ----------------------------------------------------------------

describe("parity: rope", { skip: SKIP }, () => {
  for (const [rows, H, D] of [
    [1, 1, 2],
    [17, 3, 34],
    [1024, 4, 64],
  ] as const) {
    for (const inverse of [false, true]) {
      test(`rope rows=${rows} H=${H} D=${D} inverse=${inverse}`, () => {
        const x = randn(140, rows * H * D);
        const cos = randu(141, (rows * D) / 2);
        const sin = randu(142, (rows * D) / 2);
        both(
          "out",
          [x, new Float32Array(rows * H * D)],
          (be, [a, out]) => be.rope(a!, out!, cos, sin, rows, H, D, inverse),
          [1],
        );
        both("in place", [x], (be, [a]) => be.rope(a!, a!, cos, sin, rows, H, D, inverse), [0]);
      });
    }
  }
});

describe("parity: attention", { skip: SKIP }, () => {
  const cases: { name: string; s: AttentionShape; mask?: (s: AttentionShape) => Uint8Array }[] = [
    { name: "tiny", s: attentionShape(1, 1, 1, 1, 1, 1, false) },
    { name: "odd GQA causal", s: attentionShape(1, 3, 5, 3, 1, 17, true) },
    { name: "causal 2×128×4×64", s: attentionShape(2, 128, 128, 4, 4, 64, true) },
    {
      name: "random mask with empty rows",
      s: attentionShape(2, 128, 128, 4, 4, 64, false),
      mask: (s) => randomMask(s, 150, 0.3),
    },
    {
      name: "Transfusion mask",
      s: attentionShape(2, 96, 96, 2, 2, 32, false),
      mask: (s) => transfusionMask(s, 20, 52),
    },
    { name: "GQA H=4 Hkv=2", s: attentionShape(2, 65, 65, 4, 2, 32, true) },
    { name: "MQA H=4 Hkv=1", s: attentionShape(1, 130, 130, 4, 1, 16, true) },
    { name: "T<S causal (prefix cache)", s: attentionShape(2, 33, 100, 2, 2, 16, true) },
    {
      name: "T<S masked",
      s: attentionShape(1, 33, 100, 2, 1, 16, false),
      mask: (s) => randomMask(s, 151, 0.5),
    },
    { name: "decode T=1", s: attentionShape(3, 1, 77, 4, 2, 32, true) },
    { name: "no mask, not causal", s: attentionShape(2, 40, 70, 2, 2, 24, false) },
    { name: "single head long", s: attentionShape(1, 200, 200, 1, 1, 8, true) },
  ];
  for (const c of cases) {
    test(`attention ${c.name}`, () => {
      const s = c.s;
      const qn = s.B * s.T * s.H * s.D;
      const kn = s.B * s.S * s.Hkv * s.D;
      const q = randn(160, qn);
      const k = randn(161, kn);
      const v = randn(162, kn);
      const mask = c.mask ? c.mask(s) : null;
      const fwd = (be: Backend) => {
        const out = new Float32Array(qn);
        const lse = new Float32Array(s.B * s.H * s.T);
        be.attention(q, k, v, mask, out, lse, s);
        return { out, lse };
      };
      const fj = fwd(J);
      const fn = fwd(N!);
      close(fn.out, fj.out, "out", 1e-4, gemmTol(s.D));
      close(fn.lse, fj.lse, "lse", 1e-5, gemmTol(s.D));
      const gOut = randn(163, qn);
      const bwd = (be: Backend) => {
        const gq = new Float32Array(qn).fill(Number.NaN); // every entry must be written
        const gk = new Float32Array(kn).fill(Number.NaN);
        const gv = new Float32Array(kn).fill(Number.NaN);
        be.attentionBackward(q, k, v, mask, fj.out, fj.lse, gOut, gq, gk, gv, s);
        return { gq, gk, gv };
      };
      const bj = bwd(J);
      const bn = bwd(N!);
      const tol = 1e-5 * Math.sqrt(Math.max(s.S, s.D));
      close(bn.gq, bj.gq, "gq", 1e-4, tol);
      close(bn.gk, bj.gk, "gk", 1e-4, tol);
      close(bn.gv, bj.gv, "gv", 1e-4, tol);
    });
  }

  test("attention rows with no visible key give out 0, lse −∞ and zero gradients", () => {
    const s = attentionShape(1, 4, 6, 2, 1, 8, false);
    const mask = new Uint8Array(4 * 6).fill(1);
    mask.fill(0, 6, 12); // query row 1 sees nothing
    const q = randn(170, 4 * 2 * 8);
    const k = randn(171, 6 * 8);
    const v = randn(172, 6 * 8);
    const out = new Float32Array(4 * 2 * 8).fill(Number.NaN);
    const lse = new Float32Array(2 * 4);
    N!.attention(q, k, v, mask, out, lse, s);
    for (let h = 0; h < 2; h++) {
      assert.equal(lse[h * 4 + 1], Number.NEGATIVE_INFINITY);
      for (let d = 0; d < 8; d++) assert.equal(out[(1 * 2 + h) * 8 + d], 0);
    }
    const gq = new Float32Array(q.length).fill(Number.NaN);
    N!.attentionBackward(
      q,
      k,
      v,
      mask,
      out,
      lse,
      randn(173, q.length),
      gq,
      new Float32Array(k.length),
      new Float32Array(v.length),
      s,
    );
    for (let h = 0; h < 2; h++)
      for (let d = 0; d < 8; d++) assert.equal(gq[(1 * 2 + h) * 8 + d], 0);
  });
});

// ---- convolution ------------------------------------------------------------------------

describe("parity: convolution", { skip: SKIP }, () => {
  const convs: [number, number, number, number, number, number, number, number, number][] = [
    // N, Cin, H, W, Cout, kh, kw, stride, pad
    [1, 1, 1, 1, 1, 1, 1, 1, 0],
    [1, 3, 17, 17, 5, 3, 3, 1, 1],
    [2, 3, 17, 13, 5, 4, 4, 2, 1],
    [3, 4, 9, 9, 6, 3, 3, 2, 0],
    [4, 16, 16, 16, 8, 1, 1, 1, 0],
    [1, 16, 16, 16, 8, 1, 1, 1, 0],
    [4, 32, 32, 32, 32, 3, 3, 1, 1],
    [1, 8, 7, 5, 4, 3, 5, 1, 2],
  ];
  for (const [n, Cin, H, W, Cout, kh, kw, stride, pad] of convs) {
    test(`conv2d N=${n} Cin=${Cin} ${H}×${W} Cout=${Cout} k=${kh}×${kw} s=${stride} p=${pad}`, () => {
      const Ho = Math.floor((H + 2 * pad - kh) / stride) + 1;
      const Wo = Math.floor((W + 2 * pad - kw) / stride) + 1;
      const x = randn(180, n * Cin * H * W);
      const w = randn(181, Cout * Cin * kh * kw, 0.3);
      const R = Cin * kh * kw;
      both(
        "fwd",
        [new Float32Array(n * Cout * Ho * Wo)],
        (be, [out]) => be.conv2d(x, w, out!, n, Cin, H, W, Cout, kh, kw, stride, pad),
        [0],
        1e-4,
        gemmTol(R),
      );
      const gy = randn(182, n * Cout * Ho * Wo);
      const P = Ho * Wo;
      both(
        "bwd",
        [new Float32Array(n * Cin * H * W).fill(7), new Float32Array(Cout * R).fill(7)],
        (be, [gx, gw]) =>
          be.conv2dBackward(x, w, gy, gx!, gw!, n, Cin, H, W, Cout, kh, kw, stride, pad),
        [0, 1],
        1e-4,
        gemmTol(Math.max(P * n, Cout * kh * kw)),
      );
      both(
        "bwd without gx",
        [new Float32Array(Cout * R)],
        (be, [gw]) =>
          be.conv2dBackward(x, w, gy, null, gw!, n, Cin, H, W, Cout, kh, kw, stride, pad),
        [0],
        1e-4,
        gemmTol(P * n),
      );
    });
  }

  for (const [NC, H, W, f] of [
    [1, 1, 1, 1],
    [3, 5, 7, 2],
    [64, 32, 32, 3],
  ] as const) {
    test(`upsampleNearest NC=${NC} ${H}×${W} ×${f}`, () => {
      const x = randn(190, NC * H * W);
      both(
        "fwd",
        [new Float32Array(NC * H * W * f * f)],
        (be, [out]) => be.upsampleNearest(x, out!, NC, H, W, f),
        [0],
      );
      const gy = randn(191, NC * H * W * f * f);
      both(
        "bwd",
        [new Float32Array(NC * H * W)],
        (be, [gx]) => be.upsampleNearestBackward(gy, gx!, NC, H, W, f),
        [0],
      );
    });
  }
});

// ---- optimiser --------------------------------------------------------------------------

describe("parity: adamw", { skip: SKIP }, () => {
  for (const n of [1, 17, 100_003]) {
    test(`adamw n=${n}`, () => {
      const p = randn(200, n);
      const g = randn(201, n);
      const m = randn(202, n, 0.1);
      const v = randu(203, n, 0, 0.01);
      const step = 7;
      both(
        "step",
        [p, m, v],
        (be, [pp, mm, vv]) =>
          be.adamw(
            pp!,
            g,
            mm!,
            vv!,
            n,
            3e-4,
            0.9,
            0.95,
            1e-8,
            0.1,
            1 - 0.9 ** step,
            1 - 0.95 ** step,
            0.5,
          ),
        [0, 1, 2],
      );
    });
  }
});

// ---- validation -------------------------------------------------------------------------

describe("native argument validation", { skip: SKIP }, () => {
  test("errors name the kernel and the argument", () => {
    const small = new Float32Array(4);
    assert.throws(
      () => N!.gemm(false, false, 4, 4, 4, 1, small, 0, 4, small, 0, 4, 0, small, 0, 4),
      /native gemm: argument 'A'/,
    );
    assert.throws(
      () => N!.binary("add", small, [1, 1], small, [1], small, [2, 2]),
      /native binary: argument 'bStrides'/,
    );
    assert.throws(
      () => N!.binary("add", small, [4, 1], small, [2, 1], small, [2, 2]),
      /native binary: argument 'a'/,
    );
    assert.throws(
      () => N!.gatherRows(small, Int32Array.from([2]), small, 1, 2),
      /native gatherRows: argument 'idx'/,
    );
    assert.throws(
      () => N!.crossEntropy(small, Int32Array.from([4]), small, small, 1, 4),
      /native crossEntropy: argument 'targets'/,
    );
    assert.throws(
      () => N!.unary("exp", small, new Float64Array(4) as unknown as Float32Array, 4),
      /must be a Float32Array/,
    );
    assert.throws(
      () => N!.copyStrided(small, 1, [1], small, 0, [1], [4], false),
      /native copyStrided: argument 'src'/,
    );
    const s: AttentionShape = { B: 1, T: 2, S: 2, H: 3, Hkv: 2, D: 1, scale: 1, causal: true };
    assert.throws(
      () => N!.attention(small, small, small, null, small, small, s),
      /native attention: argument 'Hkv'/,
    );
  });

  test("reports its thread count", () => {
    assert.ok(N!.threads >= 1);
  });
});
