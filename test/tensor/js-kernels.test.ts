/**
 * The js backend's kernels against definitions written out here.
 *
 * Forward kernels are compared with naive float64 loops (tolerance: 1e-6 absolute + 1e-5
 * relative, i.e. a few float32 ulps, since both sides accumulate in float64 and round once).
 * Backward kernels are compared with central finite differences of the forward kernel:
 * L(x) = Σ r ⊙ f(x) for a random r, evaluated in float64 with x perturbed by ±EPS in
 * float32 and divided by the perturbation actually stored (x+ − x−), not by 2·EPS.
 * With EPS = 1e-2 the truncation error is ~1e-5 and the float32 rounding of f contributes
 * ~1e-4, so GRAD_ATOL = 2e-3 plus GRAD_RTOL = 3e-3 relative leaves a wide margin while
 * still catching any wrong term.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  type AttentionShape,
  BINARY_OPS,
  type BinaryOp,
  UNARY_OPS,
  type UnaryOp,
} from "../../src/tensor/backends/backend.js";
import { jsBackend as K } from "../../src/tensor/backends/js.js";
import { Rng } from "../../src/tensor/rng.js";

const FWD_ATOL = 1e-6;
const FWD_RTOL = 1e-5;
const EPS = 1e-2;
const GRAD_ATOL = 2e-3;
const GRAD_RTOL = 3e-3;

// ---- helpers ----------------------------------------------------------------------------

/** Returns n standard-normal float32 values scaled by `scale`. */
function randn(rng: Rng, n: number, scale = 1): Float32Array {
  return rng.fillNormal(new Float32Array(n), 0, scale);
}

/** Returns n uniform float32 values in [lo, hi). */
function randu(rng: Rng, n: number, lo: number, hi: number): Float32Array {
  return rng.fillUniform(new Float32Array(n), lo, hi);
}

/** Asserts |actual − expected| ≤ atol + rtol·|expected| elementwise (NaN/±∞ must match exactly). */
function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  what: string,
  atol = FWD_ATOL,
  rtol = FWD_RTOL,
): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (!Number.isFinite(e)) {
      assert.ok(
        Object.is(a, e) || (Number.isNaN(a) && Number.isNaN(e)),
        `${what}[${i}]: ${a} ≠ ${e}`,
      );
      continue;
    }
    const err = Math.abs(a - e);
    assert.ok(
      err <= atol + rtol * Math.abs(e),
      `${what}[${i}]: got ${a}, expected ${e} (err ${err})`,
    );
  }
}

/** Asserts an analytic gradient matches a finite-difference one within the gradient tolerance. */
function assertGrad(analytic: ArrayLike<number>, numeric: ArrayLike<number>, what: string): void {
  assertClose(analytic, numeric, what, GRAD_ATOL, GRAD_RTOL);
}

/** Returns Σ r[i]·y[i] in float64. */
function dotF64(r: ArrayLike<number>, y: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < r.length; i++) s += r[i]! * y[i]!;
  return s;
}

/**
 * Returns ∂L/∂x for L = Σ r ⊙ forward() by central differences, perturbing each element of x
 * in place (forward must read x each call) and restoring it afterwards.
 */
function numericGrad(x: Float32Array, r: Float32Array, forward: () => Float32Array): Float64Array {
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const x0 = x[i]!;
    x[i] = x0 + EPS;
    const xPlus = x[i]!;
    const lPlus = dotF64(r, forward());
    x[i] = x0 - EPS;
    const xMinus = x[i]!;
    const lMinus = dotF64(r, forward());
    x[i] = x0;
    g[i] = (lPlus - lMinus) / (xPlus - xMinus);
  }
  return g;
}

/** Returns the number of elements of `shape` (1 for rank 0). */
function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Returns Σ idx_d·strides_d for the row-major multi-index of `flat` within `shape`. */
function stridedOffset(flat: number, shape: readonly number[], strides: readonly number[]): number {
  let off = 0;
  for (let d = shape.length - 1; d >= 0; d--) {
    off += (flat % shape[d]!) * strides[d]!;
    flat = Math.floor(flat / shape[d]!);
  }
  return off;
}

// ---- dense linear algebra ---------------------------------------------------------------

/** Returns the whole C buffer after a float64 C = alpha·op(A)·op(B) + beta·C. */
function naiveGemm(
  tA: boolean,
  tB: boolean,
  M: number,
  N: number,
  Kd: number,
  alpha: number,
  A: Float32Array,
  ao: number,
  lda: number,
  B: Float32Array,
  bo: number,
  ldb: number,
  beta: number,
  C: Float32Array,
  co: number,
  ldc: number,
): Float32Array {
  const out = C.slice();
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < Kd; k++) {
        const a = tA ? A[ao + k * lda + i]! : A[ao + i * lda + k]!;
        const b = tB ? B[bo + j * ldb + k]! : B[bo + k * ldb + j]!;
        s += a * b;
      }
      const c = co + i * ldc + j;
      out[c] = alpha * s + (beta === 0 ? 0 : beta * C[c]!);
    }
  }
  return out;
}

const TRANSPOSES: readonly [boolean, boolean][] = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
];

describe("gemm", () => {
  for (const [tA, tB] of TRANSPOSES) {
    test(`transA=${tA} transB=${tB} honours offsets, padded leading dimensions, alpha and beta`, () => {
      const rng = new Rng(1);
      // Sizes not divisible by 4 exercise the unrolled loops' remainders.
      for (const [M, N, Kd] of [
        [5, 7, 6],
        [33, 34, 35],
        [1, 1, 1],
      ] as const) {
        const lda = (tA ? M : Kd) + 2;
        const ldb = (tB ? Kd : N) + 3;
        const ldc = N + 1;
        const [ao, bo, co] = [3, 5, 2];
        const A = randn(rng, ao + (tA ? Kd : M) * lda);
        const B = randn(rng, bo + (tB ? N : Kd) * ldb);
        const C = randn(rng, co + M * ldc);
        const expected = naiveGemm(tA, tB, M, N, Kd, 1.5, A, ao, lda, B, bo, ldb, 0.5, C, co, ldc);
        K.gemm(tA, tB, M, N, Kd, 1.5, A, ao, lda, B, bo, ldb, 0.5, C, co, ldc);
        // Comparing the whole buffer also proves the padding around the block is untouched.
        assertClose(C, expected, `C ${M}x${N}x${Kd}`);
      }
    });
  }

  test("beta = 0 overwrites C without reading it (stale NaN does not leak)", () => {
    const rng = new Rng(2);
    const A = randn(rng, 12);
    const B = randn(rng, 12);
    const C = new Float32Array(9).fill(Number.NaN);
    K.gemm(false, false, 3, 3, 4, 1, A, 0, 4, B, 0, 3, 0, C, 0, 3);
    const expected = naiveGemm(false, false, 3, 3, 4, 1, A, 0, 4, B, 0, 3, 0, C, 0, 3);
    assertClose(C, expected, "C");
  });

  test("K = 0 only scales C by beta", () => {
    const C = new Float32Array([1, 2, 3, 4]);
    K.gemm(
      false,
      false,
      2,
      2,
      0,
      1,
      new Float32Array(0),
      0,
      0,
      new Float32Array(0),
      0,
      2,
      2,
      C,
      0,
      2,
    );
    assert.deepEqual([...C], [2, 4, 6, 8]);
  });

  for (const [tA, tB] of TRANSPOSES) {
    test(`gemmBatched transA=${tA} transB=${tB} with a shared (stride 0) operand`, () => {
      const rng = new Rng(3);
      const [M, N, Kd, batch] = [3, 5, 4, 3];
      for (const shareA of [true, false]) {
        const strideA = shareA ? 0 : M * Kd;
        const strideB = shareA ? Kd * N : 0;
        const A = randn(rng, M * Kd * (shareA ? 1 : batch));
        const B = randn(rng, Kd * N * (shareA ? batch : 1));
        const C = randn(rng, M * N * batch);
        let expected = C;
        for (let i = 0; i < batch; i++) {
          expected = naiveGemm(
            tA,
            tB,
            M,
            N,
            Kd,
            0.75,
            A,
            i * strideA,
            tA ? M : Kd,
            B,
            i * strideB,
            tB ? Kd : N,
            -1,
            expected,
            i * M * N,
            N,
          );
        }
        K.gemmBatched(tA, tB, M, N, Kd, 0.75, A, strideA, B, strideB, -1, C, M * N, batch);
        assertClose(C, expected, `C shareA=${shareA}`);
      }
    });
  }
});

// ---- elementwise ------------------------------------------------------------------------

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** The float64 definition of each unary op (GELU by its tanh approximation). */
function naiveUnary(op: UnaryOp, x: number): number {
  const sig = 1 / (1 + Math.exp(-x));
  switch (op) {
    case "exp":
      return Math.exp(x);
    case "log":
      return Math.log(x);
    case "sqrt":
      return Math.sqrt(x);
    case "rsqrt":
      return 1 / Math.sqrt(x);
    case "tanh":
      return Math.tanh(x);
    case "sigmoid":
      return sig;
    case "silu":
      return x * sig;
    case "gelu":
      return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x ** 3)));
    case "relu":
      return Math.max(x, 0);
    case "neg":
      return -x;
    case "abs":
      return Math.abs(x);
    case "square":
      return x * x;
  }
}

/** Returns inputs inside the op's domain and at least 0.1 away from any kink. */
function unaryInputs(rng: Rng, op: UnaryOp, n: number): Float32Array {
  if (op === "log" || op === "sqrt" || op === "rsqrt") return randu(rng, n, 0.5, 2);
  if (op === "relu" || op === "abs") {
    return randu(rng, n, 0.1, 2).map((v, i) => (i % 2 === 0 ? v : -v));
  }
  return randu(rng, n, -2, 2);
}

/** The float64 definition of each binary op. */
function naiveBinary(op: BinaryOp, a: number, b: number): number {
  switch (op) {
    case "add":
      return a + b;
    case "sub":
      return a - b;
    case "mul":
      return a * b;
    case "div":
      return a / b;
    case "max":
      return Math.max(a, b);
    case "min":
      return Math.min(a, b);
  }
}

describe("elementwise", () => {
  for (const op of UNARY_OPS) {
    test(`unary ${op} matches its definition`, () => {
      const rng = new Rng(10);
      const n = 37;
      const x = unaryInputs(rng, op, n);
      const out = new Float32Array(n);
      K.unary(op, x, out, n);
      assertClose(
        out,
        Array.from(x, (v) => naiveUnary(op, v)),
        op,
      );
    });

    test(`unaryBackward ${op} matches finite differences`, () => {
      const rng = new Rng(11);
      const n = 16;
      const x = unaryInputs(rng, op, n);
      const y = new Float32Array(n);
      const r = randn(rng, n);
      const gx = new Float32Array(n).fill(Number.NaN);
      K.unary(op, x, y, n);
      K.unaryBackward(op, x, y, r, gx, n);
      const numeric = numericGrad(x, r, () => {
        K.unary(op, x, y, n);
        return y;
      });
      assertGrad(gx, numeric, `d${op}`);
    });
  }

  test("relu and abs take derivative 0 at 0", () => {
    const x = new Float32Array([0, 0]);
    const gy = new Float32Array([1, 1]);
    const gx = new Float32Array(2);
    for (const op of ["relu", "abs"] as const) {
      K.unaryBackward(op, x, x, gy, gx, 2);
      assert.deepEqual([...gx], [0, 0], op);
    }
  });

  // Each pattern: output shape and the strides of a and b (0 = broadcast) into buffers of the
  // given sizes.
  const patterns: { name: string; shape: number[]; aStrides: number[]; bStrides: number[] }[] = [
    { name: "same shape", shape: [3, 4], aStrides: [4, 1], bStrides: [4, 1] },
    { name: "row vector b", shape: [3, 4], aStrides: [4, 1], bStrides: [0, 1] },
    { name: "column vector b", shape: [3, 4], aStrides: [4, 1], bStrides: [1, 0] },
    { name: "scalar b", shape: [3, 4], aStrides: [4, 1], bStrides: [0, 0] },
    { name: "scalar a", shape: [5], aStrides: [0], bStrides: [1] },
    {
      name: "transposed a, middle-broadcast b",
      shape: [2, 3, 4],
      aStrides: [1, 8, 2],
      bStrides: [4, 0, 1],
    },
    {
      name: "rank 8 mixed broadcast",
      shape: [2, 1, 2, 3, 1, 2, 2, 2],
      aStrides: [48, 48, 24, 8, 8, 4, 2, 1],
      bStrides: [0, 0, 6, 2, 0, 1, 0, 0],
    },
    { name: "rank 0", shape: [], aStrides: [], bStrides: [] },
  ];
  for (const p of patterns) {
    test(`binary ops broadcast: ${p.name}`, () => {
      const rng = new Rng(12);
      const n = sizeOf(p.shape);
      // Operand buffers big enough for the largest offset each stride pattern reaches.
      const extent = (strides: number[]) =>
        1 + p.shape.reduce((s, dim, d) => s + (dim - 1) * strides[d]!, 0);
      // |b| ≥ 0.5 keeps division well conditioned.
      const a = randn(rng, extent(p.aStrides));
      const b = randu(rng, extent(p.bStrides), 0.5, 2).map((v, i) => (i % 3 === 0 ? -v : v));
      for (const op of BINARY_OPS) {
        const out = new Float32Array(n);
        K.binary(op, a, p.aStrides, b, p.bStrides, out, p.shape);
        const expected = Array.from({ length: n }, (_, i) =>
          naiveBinary(
            op,
            a[stridedOffset(i, p.shape, p.aStrides)]!,
            b[stridedOffset(i, p.shape, p.bStrides)]!,
          ),
        );
        assertClose(out, expected, op);
      }
    });
  }

  test("affine, axpy, fill and pow touch only the first n elements", () => {
    const rng = new Rng(13);
    const x = randu(rng, 6, 0.5, 2);
    const out = new Float32Array(6).fill(7);
    K.affine(x, out, 5, 2, -1);
    assertClose(out, [...Array.from(x.subarray(0, 5), (v) => 2 * v - 1), 7], "affine");
    const y = randn(rng, 6);
    const y0 = y.slice();
    K.axpy(5, -0.5, x, y);
    assertClose(y, [...Array.from(y0.subarray(0, 5), (v, i) => v - 0.5 * x[i]!), y0[5]!], "axpy");
    K.fill(out, 4, 3.5);
    assert.deepEqual([...out.subarray(3, 6)], [3.5, out[4], 7]);
    K.pow(x, out, 5, 1.5);
    assertClose(
      out.subarray(0, 5),
      Array.from(x.subarray(0, 5), (v) => v ** 1.5),
      "pow",
    );
  });
});

// ---- layout -----------------------------------------------------------------------------

/** Returns dst after the naive strided copy (or accumulate) of src over `shape`. */
function naiveCopyStrided(
  src: Float32Array,
  srcOffset: number,
  srcStrides: number[],
  dst: Float32Array,
  dstOffset: number,
  dstStrides: number[],
  shape: number[],
  accumulate: boolean,
): Float32Array {
  const out = dst.slice();
  for (let i = 0; i < sizeOf(shape); i++) {
    const d = dstOffset + stridedOffset(i, shape, dstStrides);
    const v = src[srcOffset + stridedOffset(i, shape, srcStrides)]!;
    out[d] = accumulate ? out[d]! + v : v;
  }
  return out;
}

describe("layout", () => {
  const copies: {
    name: string;
    srcSize: number;
    srcOffset: number;
    srcStrides: number[];
    dstSize: number;
    dstOffset: number;
    dstStrides: number[];
    shape: number[];
    accumulate: boolean;
  }[] = [
    {
      name: "transpose [3,5] → [5,3]",
      srcSize: 15,
      srcOffset: 0,
      srcStrides: [1, 5],
      dstSize: 15,
      dstOffset: 0,
      dstStrides: [3, 1],
      shape: [5, 3],
      accumulate: false,
    },
    {
      name: "slice rows 1..2, cols 2..4 of [4,6] into a padded buffer",
      srcSize: 24,
      srcOffset: 8,
      srcStrides: [6, 1],
      dstSize: 12,
      dstOffset: 3,
      dstStrides: [4, 1],
      shape: [2, 3],
      accumulate: false,
    },
    {
      name: "accumulate a transposed [2,3,4] into existing values",
      srcSize: 24,
      srcOffset: 0,
      srcStrides: [1, 8, 2],
      dstSize: 24,
      dstOffset: 0,
      dstStrides: [12, 4, 1],
      shape: [2, 3, 4],
      accumulate: true,
    },
    {
      name: "expand a row (source stride 0)",
      srcSize: 4,
      srcOffset: 0,
      srcStrides: [0, 1],
      dstSize: 12,
      dstOffset: 0,
      dstStrides: [4, 1],
      shape: [3, 4],
      accumulate: false,
    },
    {
      name: "rank 0 single element",
      srcSize: 3,
      srcOffset: 2,
      srcStrides: [],
      dstSize: 2,
      dstOffset: 1,
      dstStrides: [],
      shape: [],
      accumulate: true,
    },
  ];
  for (const c of copies) {
    test(`copyStrided: ${c.name}`, () => {
      const rng = new Rng(20);
      const src = randn(rng, c.srcSize);
      const dst = randn(rng, c.dstSize);
      const expected = naiveCopyStrided(
        src,
        c.srcOffset,
        c.srcStrides,
        dst,
        c.dstOffset,
        c.dstStrides,
        c.shape,
        c.accumulate,
      );
      K.copyStrided(
        src,
        c.srcOffset,
        c.srcStrides,
        dst,
        c.dstOffset,
        c.dstStrides,
        c.shape,
        c.accumulate,
      );
      assertClose(dst, expected, "dst");
    });
  }

  const reductions: { name: string; shape: number[]; outShape: number[] }[] = [
    { name: "[2,3,4] → scalar", shape: [2, 3, 4], outShape: [1, 1, 1] },
    { name: "[2,3,4] → [1,3,1]", shape: [2, 3, 4], outShape: [1, 3, 1] },
    { name: "[2,3,4] → [2,1,4]", shape: [2, 3, 4], outShape: [2, 1, 4] },
    { name: "[2,3,4] → [2,3,1]", shape: [2, 3, 4], outShape: [2, 3, 1] },
    { name: "[2,3,4] → itself", shape: [2, 3, 4], outShape: [2, 3, 4] },
    { name: "[3,1,2,5,2] → [1,1,2,1,2]", shape: [3, 1, 2, 5, 2], outShape: [1, 1, 2, 1, 2] },
  ];
  for (const c of reductions) {
    test(`reduceSum overwrites out: ${c.name}`, () => {
      const rng = new Rng(21);
      const x = randn(rng, sizeOf(c.shape));
      const outSize = sizeOf(c.outShape);
      // Contiguous strides of the out shape, then 0 wherever the dimension is reduced.
      const outStrides = c.outShape.map((dim, d) =>
        dim === 1 && c.shape[d] !== 1 ? 0 : sizeOf(c.outShape.slice(d + 1)),
      );
      const expected = new Float64Array(outSize);
      for (let i = 0; i < x.length; i++) expected[stridedOffset(i, c.shape, outStrides)] += x[i]!;
      const out = new Float32Array(outSize).fill(99);
      K.reduceSum(x, c.shape, out, outStrides, outSize);
      assertClose(out, expected, "out");
    });
  }

  test("sumSquares writes the sum of the first n squares, accumulated in float64, to out[at]", () => {
    const x = new Float32Array([1, -2, 3, 100]);
    const out = new Float32Array(3);
    K.sumSquares(x, 3, out, 1);
    assert.deepEqual(Array.from(out), [0, 14, 0]);
    const big = new Float32Array(4096).fill(1.1);
    K.sumSquares(big, 4096, out, 2);
    assert.equal(out[2], Math.fround(4096 * Math.fround(1.1) ** 2));
  });

  test("gatherRows copies rows; scatterAddRows adds them back, repeats included", () => {
    const rng = new Rng(22);
    const table = randn(rng, 5 * 3);
    const idx = new Int32Array([4, 0, 4, 2]);
    const out = new Float32Array(4 * 3);
    K.gatherRows(table, idx, out, 4, 3);
    for (let r = 0; r < 4; r++) {
      assert.deepEqual(
        [...out.subarray(r * 3, r * 3 + 3)],
        [...table.subarray(idx[r]! * 3, idx[r]! * 3 + 3)],
      );
    }
    const g = randn(rng, 4 * 3);
    const gTable = new Float32Array(15).fill(1);
    K.scatterAddRows(g, idx, gTable, 4, 3);
    const expected = new Float64Array(15).fill(1);
    for (let r = 0; r < 4; r++)
      for (let c = 0; c < 3; c++) expected[idx[r]! * 3 + c] += g[r * 3 + c]!;
    assertClose(gTable, expected, "gTable");
  });
});

// ---- softmax and losses -----------------------------------------------------------------

/** Returns the float64 log-softmax of each row of x [rows, cols]. */
function naiveLogSoftmax(x: Float32Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s += Math.exp(x[r * cols + c]!);
    for (let c = 0; c < cols; c++) out[r * cols + c] = x[r * cols + c]! - Math.log(s);
  }
  return out;
}

describe("softmax and losses", () => {
  for (const log of [false, true]) {
    const name = log ? "log-softmax" : "softmax";
    test(`${name} matches its definition, including large logits`, () => {
      const rng = new Rng(30);
      const x = randn(rng, 4 * 7, 3);
      x[3] = 80; // exp(80) overflows float32; the kernel must subtract the row max
      const out = new Float32Array(x.length);
      K.softmax(x, out, 4, 7, log);
      const ls = naiveLogSoftmax(x, 4, 7);
      assertClose(out, log ? ls : ls.map(Math.exp), name);
    });

    test(`${name} backward matches finite differences`, () => {
      const rng = new Rng(31);
      const [rows, cols] = [3, 5];
      const x = randn(rng, rows * cols);
      const y = new Float32Array(x.length);
      const r = randn(rng, x.length);
      K.softmax(x, y, rows, cols, log);
      const gx = new Float32Array(x.length);
      K.softmaxBackward(y, r, gx, rows, cols, log);
      const numeric = numericGrad(x, r, () => {
        K.softmax(x, y, rows, cols, log);
        return y;
      });
      assertGrad(gx, numeric, "gx");
    });
  }

  test("crossEntropy gives lse − logit[target] and zeros for ignored rows", () => {
    const rng = new Rng(32);
    const [rows, V] = [4, 6];
    const logits = randn(rng, rows * V, 2);
    const targets = new Int32Array([2, -1, 5, 0]);
    const loss = new Float32Array(rows).fill(9);
    const lse = new Float32Array(rows).fill(9);
    K.crossEntropy(logits, targets, loss, lse, rows, V);
    const ls = naiveLogSoftmax(logits, rows, V);
    for (let r = 0; r < rows; r++) {
      const t = targets[r]!;
      const expectedLoss = t < 0 ? 0 : -ls[r * V + t]!;
      const expectedLse = t < 0 ? 0 : logits[r * V]! - ls[r * V]!;
      assertClose([loss[r]!, lse[r]!], [expectedLoss, expectedLse], `row ${r}`);
    }
  });

  test("crossEntropyBackward matches finite differences and is zero on ignored rows", () => {
    const rng = new Rng(33);
    const [rows, V] = [4, 6];
    const logits = randn(rng, rows * V, 2);
    const targets = new Int32Array([2, -1, 5, 0]);
    const loss = new Float32Array(rows);
    const lse = new Float32Array(rows);
    const gLoss = randn(rng, rows);
    K.crossEntropy(logits, targets, loss, lse, rows, V);
    const gLogits = new Float32Array(rows * V).fill(Number.NaN);
    K.crossEntropyBackward(logits, targets, lse, gLoss, gLogits, rows, V);
    const numeric = numericGrad(logits, gLoss, () => {
      K.crossEntropy(logits, targets, loss, lse, rows, V);
      return loss;
    });
    assertGrad(gLogits, numeric, "gLogits");
    assert.deepEqual([...gLogits.subarray(V, 2 * V)], new Array(V).fill(0));
  });
});

// ---- normalisation ----------------------------------------------------------------------

/** A groupnorm geometry: LayerNorm is G = 1, spatial = 1. */
interface NormCase {
  name: string;
  N: number;
  G: number;
  channels: number;
  spatial: number;
  affine: boolean;
}

const NORM_CASES: NormCase[] = [
  { name: "LayerNorm with affine", N: 3, G: 1, channels: 8, spatial: 1, affine: true },
  { name: "LayerNorm without affine", N: 3, G: 1, channels: 8, spatial: 1, affine: false },
  { name: "GroupNorm with affine", N: 2, G: 2, channels: 4, spatial: 3, affine: true },
  { name: "GroupNorm without affine", N: 2, G: 2, channels: 4, spatial: 3, affine: false },
  { name: "GroupNorm, one channel per group", N: 2, G: 3, channels: 3, spatial: 4, affine: true },
];

/** Returns the float64 group normalisation of x (see Backend.groupnorm). */
function naiveGroupnorm(
  x: Float32Array,
  w: Float32Array | null,
  b: Float32Array | null,
  c: NormCase,
) {
  const per = c.channels * c.spatial;
  const M = per / c.G;
  const out = new Float64Array(x.length);
  const mean = new Float64Array(c.N * c.G);
  const rstd = new Float64Array(c.N * c.G);
  for (let n = 0; n < c.N; n++) {
    for (let g = 0; g < c.G; g++) {
      const group = Array.from(x.subarray(n * per + g * M, n * per + (g + 1) * M));
      const mu = group.reduce((s, v) => s + v, 0) / M;
      const variance = group.reduce((s, v) => s + (v - mu) ** 2, 0) / M;
      const s = 1 / Math.sqrt(variance + 1e-5);
      mean[n * c.G + g] = mu;
      rstd[n * c.G + g] = s;
      for (let e = 0; e < M; e++) {
        const ch = Math.floor((g * M + e) / c.spatial);
        out[n * per + g * M + e] = (group[e]! - mu) * s * (w ? w[ch]! : 1) + (b ? b[ch]! : 0);
      }
    }
  }
  return { out, mean, rstd };
}

describe("normalisation", () => {
  test("rmsnorm matches its definition", () => {
    const rng = new Rng(40);
    const [rows, dim] = [3, 8];
    const x = randn(rng, rows * dim, 2);
    const w = randn(rng, dim);
    const out = new Float32Array(x.length);
    const rstd = new Float32Array(rows);
    K.rmsnorm(x, w, out, rstd, rows, dim, 1e-5);
    const expectedOut = new Float64Array(x.length);
    const expectedRstd = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      let ss = 0;
      for (let c = 0; c < dim; c++) ss += x[r * dim + c]! ** 2;
      expectedRstd[r] = 1 / Math.sqrt(ss / dim + 1e-5);
      for (let c = 0; c < dim; c++)
        expectedOut[r * dim + c] = x[r * dim + c]! * expectedRstd[r]! * w[c]!;
    }
    assertClose(out, expectedOut, "out");
    assertClose(rstd, expectedRstd, "rstd");
  });

  test("rmsnormBackward matches finite differences; gw accumulates", () => {
    const rng = new Rng(41);
    const [rows, dim] = [3, 8];
    const x = randn(rng, rows * dim);
    const w = randn(rng, dim);
    const out = new Float32Array(x.length);
    const rstd = new Float32Array(rows);
    const r = randn(rng, x.length);
    const forward = () => {
      K.rmsnorm(x, w, out, rstd, rows, dim, 1e-5);
      return out;
    };
    forward();
    const gx = new Float32Array(x.length).fill(Number.NaN);
    const gw = new Float32Array(dim).fill(1);
    K.rmsnormBackward(x, w, rstd, r, gx, gw, rows, dim);
    assertGrad(gx, numericGrad(x, r, forward), "gx");
    assertGrad(
      gw.map((v) => v - 1),
      numericGrad(w, r, forward),
      "gw",
    );
  });

  for (const c of NORM_CASES) {
    test(`groupnorm matches its definition: ${c.name}`, () => {
      const rng = new Rng(42);
      const x = randn(rng, c.N * c.channels * c.spatial, 2).map((v) => v + 1);
      const w = c.affine ? randn(rng, c.channels) : null;
      const b = c.affine ? randn(rng, c.channels) : null;
      const out = new Float32Array(x.length);
      const mean = new Float32Array(c.N * c.G);
      const rstd = new Float32Array(c.N * c.G);
      K.groupnorm(x, w, b, out, mean, rstd, c.N, c.G, c.channels, c.spatial, 1e-5);
      const expected = naiveGroupnorm(x, w, b, c);
      assertClose(out, expected.out, "out");
      assertClose(mean, expected.mean, "mean");
      assertClose(rstd, expected.rstd, "rstd");
    });

    test(`groupnormBackward matches finite differences: ${c.name}`, () => {
      const rng = new Rng(43);
      const x = randn(rng, c.N * c.channels * c.spatial);
      const w = c.affine ? randn(rng, c.channels) : null;
      const b = c.affine ? randn(rng, c.channels) : null;
      const out = new Float32Array(x.length);
      const mean = new Float32Array(c.N * c.G);
      const rstd = new Float32Array(c.N * c.G);
      const r = randn(rng, x.length);
      const forward = () => {
        K.groupnorm(x, w, b, out, mean, rstd, c.N, c.G, c.channels, c.spatial, 1e-5);
        return out;
      };
      forward();
      const gx = new Float32Array(x.length).fill(Number.NaN);
      const gw = c.affine ? new Float32Array(c.channels).fill(1) : null;
      const gb = c.affine ? new Float32Array(c.channels).fill(1) : null;
      K.groupnormBackward(x, w, mean, rstd, r, gx, gw, gb, c.N, c.G, c.channels, c.spatial);
      assertGrad(gx, numericGrad(x, r, forward), "gx");
      if (w && b && gw && gb) {
        assertGrad(
          gw.map((v) => v - 1),
          numericGrad(w, r, forward),
          "gw",
        );
        assertGrad(
          gb.map((v) => v - 1),
          numericGrad(b, r, forward),
          "gb",
        );
      }
    });
  }
});

// ---- rope and attention -----------------------------------------------------------------

/** Returns per-row cos/sin tables [rows, D/2] for positions 0..rows−1 (base 10000). */
function ropeTables(rows: number, D: number): { cos: Float32Array; sin: Float32Array } {
  const half = D / 2;
  const cos = new Float32Array(rows * half);
  const sin = new Float32Array(rows * half);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < half; i++) {
      const angle = r * 10000 ** (-i / half);
      cos[r * half + i] = Math.cos(angle);
      sin[r * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

describe("rope", () => {
  const [rows, H, D] = [5, 2, 8];
  const { cos, sin } = ropeTables(rows, D);

  test("rotates each (i, i + D/2) pair by the row's angle, also in place", () => {
    const rng = new Rng(50);
    const x = randn(rng, rows * H * D);
    const expected = new Float64Array(x.length);
    for (let r = 0; r < rows; r++) {
      for (let h = 0; h < H; h++) {
        for (let i = 0; i < D / 2; i++) {
          const o = (r * H + h) * D;
          const [c, s] = [cos[r * (D / 2) + i]!, sin[r * (D / 2) + i]!];
          expected[o + i] = x[o + i]! * c - x[o + i + D / 2]! * s;
          expected[o + i + D / 2] = x[o + i + D / 2]! * c + x[o + i]! * s;
        }
      }
    }
    const out = new Float32Array(x.length);
    K.rope(x, out, cos, sin, rows, H, D, false);
    assertClose(out, expected, "out");
    K.rope(x, x, cos, sin, rows, H, D, false);
    assertClose(x, expected, "in place");
  });

  test("inverse undoes the rotation and is its backward (finite differences)", () => {
    const rng = new Rng(51);
    const x = randn(rng, rows * H * D);
    const y = new Float32Array(x.length);
    const back = new Float32Array(x.length);
    K.rope(x, y, cos, sin, rows, H, D, false);
    K.rope(y, back, cos, sin, rows, H, D, true);
    assertClose(back, x, "round trip");
    const r = randn(rng, x.length);
    const gx = new Float32Array(x.length);
    K.rope(r, gx, cos, sin, rows, H, D, true);
    const numeric = numericGrad(x, r, () => {
      K.rope(x, y, cos, sin, rows, H, D, false);
      return y;
    });
    assertGrad(gx, numeric, "gx");
  });
});

/** Returns whether query i of batch b sees key j, decided independently of the kernel. */
function naiveVisible(mask: Uint8Array | null, s: AttentionShape, b: number, i: number, j: number) {
  if (mask) return mask[b * s.T * s.S + i * s.S + j] === 1;
  return !s.causal || j - (s.S - s.T) <= i;
}

/** Returns the float64 attention output and lse by the textbook formula. */
function naiveAttention(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  mask: Uint8Array | null,
  s: AttentionShape,
): { out: Float64Array; lse: Float64Array } {
  const out = new Float64Array(s.B * s.T * s.H * s.D);
  const lse = new Float64Array(s.B * s.H * s.T);
  for (let b = 0; b < s.B; b++) {
    for (let h = 0; h < s.H; h++) {
      const hk = Math.floor((h * s.Hkv) / s.H);
      for (let i = 0; i < s.T; i++) {
        const qo = ((b * s.T + i) * s.H + h) * s.D;
        const weights: number[] = [];
        let total = 0;
        for (let j = 0; j < s.S; j++) {
          let w = 0;
          if (naiveVisible(mask, s, b, i, j)) {
            let dot = 0;
            for (let d = 0; d < s.D; d++)
              dot += q[qo + d]! * k[((b * s.S + j) * s.Hkv + hk) * s.D + d]!;
            w = Math.exp(s.scale * dot);
          }
          weights.push(w);
          total += w;
        }
        lse[(b * s.H + h) * s.T + i] = Math.log(total);
        for (let j = 0; j < s.S; j++) {
          for (let d = 0; d < s.D; d++) {
            const p = total === 0 ? 0 : weights[j]! / total;
            out[qo + d] += p * v[((b * s.S + j) * s.Hkv + hk) * s.D + d]!;
          }
        }
      }
    }
  }
  return { out, lse };
}

/** Returns a random [B, T, S] mask whose row (b = 0, i = 1) is fully masked. */
function randomMask(rng: Rng, B: number, T: number, S: number): Uint8Array {
  const mask = new Uint8Array(B * T * S).map(() => (rng.uniform() < 0.6 ? 1 : 0));
  mask.fill(0, S, 2 * S);
  return mask;
}

interface AttentionCase {
  name: string;
  shape: Omit<AttentionShape, "scale">;
  masked: boolean;
}

const ATTENTION_CASES: AttentionCase[] = [
  { name: "causal", shape: { B: 2, T: 4, S: 4, H: 2, Hkv: 2, D: 4, causal: true }, masked: false },
  {
    name: "no mask",
    shape: { B: 1, T: 3, S: 5, H: 2, Hkv: 2, D: 4, causal: false },
    masked: false,
  },
  {
    name: "random mask with a fully masked row",
    shape: { B: 2, T: 4, S: 5, H: 2, Hkv: 2, D: 4, causal: false },
    masked: true,
  },
  {
    name: "grouped-query heads, causal, T < S",
    shape: { B: 2, T: 3, S: 6, H: 4, Hkv: 2, D: 8, causal: true },
    masked: false,
  },
  {
    name: "causal with T > S (leading rows see nothing)",
    shape: { B: 1, T: 5, S: 3, H: 2, Hkv: 1, D: 4, causal: true },
    masked: false,
  },
];

describe("attention", () => {
  for (const c of ATTENTION_CASES) {
    const s: AttentionShape = { ...c.shape, scale: 1 / Math.sqrt(c.shape.D) };
    const qSize = s.B * s.T * s.H * s.D;
    const kvSize = s.B * s.S * s.Hkv * s.D;

    test(`forward matches the textbook formula: ${c.name}`, () => {
      const rng = new Rng(60);
      const q = randn(rng, qSize, 1.5);
      const k = randn(rng, kvSize, 1.5);
      const v = randn(rng, kvSize);
      const mask = c.masked ? randomMask(rng, s.B, s.T, s.S) : null;
      const out = new Float32Array(qSize).fill(Number.NaN);
      const lse = new Float32Array(s.B * s.H * s.T);
      K.attention(q, k, v, mask, out, lse, s);
      const expected = naiveAttention(q, k, v, mask, s);
      assertClose(out, expected.out, "out");
      // Rows with no visible key: log(0) = −∞ in the naive version, which must match exactly.
      assertClose(lse, expected.lse, "lse");
    });

    test(`backward matches finite differences: ${c.name}`, () => {
      const rng = new Rng(61);
      const q = randn(rng, qSize);
      const k = randn(rng, kvSize);
      const v = randn(rng, kvSize);
      const mask = c.masked ? randomMask(rng, s.B, s.T, s.S) : null;
      const out = new Float32Array(qSize);
      const lse = new Float32Array(s.B * s.H * s.T);
      const r = randn(rng, qSize);
      const forward = () => {
        K.attention(q, k, v, mask, out, lse, s);
        return out;
      };
      forward();
      const gq = new Float32Array(qSize).fill(Number.NaN);
      const gk = new Float32Array(kvSize).fill(Number.NaN);
      const gv = new Float32Array(kvSize).fill(Number.NaN);
      K.attentionBackward(q, k, v, mask, out, lse, r, gq, gk, gv, s);
      assertGrad(gq, numericGrad(q, r, forward), "gq");
      assertGrad(gk, numericGrad(k, r, forward), "gk");
      assertGrad(gv, numericGrad(v, r, forward), "gv");
      if (c.masked) {
        // Row (b = 0, i = 1) is fully masked: every head's query gradient is exactly zero.
        assert.deepEqual([...gq.subarray(s.H * s.D, 2 * s.H * s.D)], new Array(s.H * s.D).fill(0));
      }
    });
  }
});

// ---- convolution ------------------------------------------------------------------------

interface ConvCase {
  name: string;
  N: number;
  Cin: number;
  H: number;
  W: number;
  Cout: number;
  kh: number;
  kw: number;
  stride: number;
  pad: number;
}

const CONV_CASES: ConvCase[] = [
  {
    name: "3×3, stride 1, pad 1",
    N: 2,
    Cin: 2,
    H: 5,
    W: 4,
    Cout: 3,
    kh: 3,
    kw: 3,
    stride: 1,
    pad: 1,
  },
  {
    name: "3×2, stride 2, pad 1, odd sizes",
    N: 2,
    Cin: 2,
    H: 7,
    W: 6,
    Cout: 3,
    kh: 3,
    kw: 2,
    stride: 2,
    pad: 1,
  },
  { name: "1×1, no padding", N: 1, Cin: 3, H: 3, W: 3, Cout: 2, kh: 1, kw: 1, stride: 1, pad: 0 },
  {
    name: "4×4, stride 2, pad 2",
    N: 1,
    Cin: 1,
    H: 6,
    W: 6,
    Cout: 2,
    kh: 4,
    kw: 4,
    stride: 2,
    pad: 2,
  },
];

/** Returns the output height and width of a convolution case. */
function convOut(c: ConvCase): [number, number] {
  return [
    Math.floor((c.H + 2 * c.pad - c.kh) / c.stride) + 1,
    Math.floor((c.W + 2 * c.pad - c.kw) / c.stride) + 1,
  ];
}

/** Returns the float64 convolution by direct summation over the zero-padded input. */
function naiveConv2d(x: Float32Array, w: Float32Array, c: ConvCase): Float64Array {
  const [Ho, Wo] = convOut(c);
  const out = new Float64Array(c.N * c.Cout * Ho * Wo);
  for (let n = 0; n < c.N; n++)
    for (let co = 0; co < c.Cout; co++)
      for (let oy = 0; oy < Ho; oy++)
        for (let ox = 0; ox < Wo; ox++) {
          let s = 0;
          for (let ci = 0; ci < c.Cin; ci++)
            for (let ky = 0; ky < c.kh; ky++)
              for (let kx = 0; kx < c.kw; kx++) {
                const iy = oy * c.stride - c.pad + ky;
                const ix = ox * c.stride - c.pad + kx;
                if (iy < 0 || iy >= c.H || ix < 0 || ix >= c.W) continue;
                s +=
                  x[((n * c.Cin + ci) * c.H + iy) * c.W + ix]! *
                  w[((co * c.Cin + ci) * c.kh + ky) * c.kw + kx]!;
              }
          out[((n * c.Cout + co) * Ho + oy) * Wo + ox] = s;
        }
  return out;
}

describe("convolution", () => {
  for (const c of CONV_CASES) {
    const [Ho, Wo] = convOut(c);
    const xSize = c.N * c.Cin * c.H * c.W;
    const wSize = c.Cout * c.Cin * c.kh * c.kw;
    const ySize = c.N * c.Cout * Ho * Wo;
    const run = (x: Float32Array, w: Float32Array, out: Float32Array) =>
      K.conv2d(x, w, out, c.N, c.Cin, c.H, c.W, c.Cout, c.kh, c.kw, c.stride, c.pad);

    test(`conv2d matches direct summation: ${c.name}`, () => {
      const rng = new Rng(70);
      const x = randn(rng, xSize);
      const w = randn(rng, wSize);
      const out = new Float32Array(ySize).fill(Number.NaN);
      run(x, w, out);
      assertClose(out, naiveConv2d(x, w, c), "out");
    });

    test(`conv2dBackward matches finite differences: ${c.name}`, () => {
      const rng = new Rng(71);
      const x = randn(rng, xSize);
      const w = randn(rng, wSize);
      const out = new Float32Array(ySize);
      const r = randn(rng, ySize);
      const forward = () => {
        run(x, w, out);
        return out;
      };
      const gx = new Float32Array(xSize).fill(Number.NaN);
      const gw = new Float32Array(wSize).fill(Number.NaN);
      const args = [c.N, c.Cin, c.H, c.W, c.Cout, c.kh, c.kw, c.stride, c.pad] as const;
      K.conv2dBackward(x, w, r, gx, gw, ...args);
      assertGrad(gx, numericGrad(x, r, forward), "gx");
      assertGrad(gw, numericGrad(w, r, forward), "gw");
      // Without gx the weight gradient is the same (and overwrites again).
      const gwOnly = new Float32Array(wSize).fill(5);
      K.conv2dBackward(x, w, r, null, gwOnly, ...args);
      assert.deepEqual([...gwOnly], [...gw]);
    });
  }

  test("upsampleNearest repeats pixels; its backward sums each block (finite differences)", () => {
    const rng = new Rng(72);
    const [NC, H, W, f] = [2, 2, 3, 3];
    const x = randn(rng, NC * H * W);
    const out = new Float32Array(NC * H * f * W * f);
    K.upsampleNearest(x, out, NC, H, W, f);
    const expected = Array.from(out, (_, e) => {
      const ox = e % (W * f);
      const oy = Math.floor(e / (W * f)) % (H * f);
      const nc = Math.floor(e / (W * f * H * f));
      return x[(nc * H + Math.floor(oy / f)) * W + Math.floor(ox / f)]!;
    });
    assertClose(out, expected, "out");
    const r = randn(rng, out.length);
    const gx = new Float32Array(x.length).fill(Number.NaN);
    K.upsampleNearestBackward(r, gx, NC, H, W, f);
    const numeric = numericGrad(x, r, () => {
      K.upsampleNearest(x, out, NC, H, W, f);
      return out;
    });
    assertGrad(gx, numeric, "gx");
  });
});

// ---- optimiser --------------------------------------------------------------------------

describe("adamw", () => {
  test("two steps match a hand-computed example and leave elements beyond n alone", () => {
    // lr 0.1, β1 0.9, β2 0.99, eps 1e-8, weight decay 0.1, gradScale 2.
    // Element 0: p = 1, g = 0.5 then −0.25, so the scaled gradients are 1 then −0.5.
    //   step 1: m = 0.1, v = 0.01, bc1 = 0.1, bc2 = 0.01 → m̂ = 1, v̂ = 1;
    //           p = 1 − 0.1·(1/(1 + 1e-8) + 0.1·1) = 0.89 (to 1e-9).
    //   step 2: m = 0.09 − 0.05 = 0.04, v = 0.0099 + 0.0025 = 0.0124,
    //           bc1 = 0.19, bc2 = 0.0199 → m̂ = 0.2105263, v̂ = 0.6231156, √v̂ = 0.7893767;
    //           p = 0.89 − 0.1·(0.2105263/0.7893767 + 0.1·0.89) = 0.89 − 0.1·0.3556994 = 0.8544301.
    // Element 1: p = −2, g = 0 then 0.75: step 1 only decays (p = −2 + 0.1·0.1·2 = −1.98);
    //   step 2: ĝ = 1.5, m = 0.15, v = 0.0225, m̂ = 0.7894737, v̂ = 1.1306533, √v̂ = 1.0633218;
    //           p = −1.98 − 0.1·(0.7424598 − 0.198) = −2.0344460.
    const p = new Float32Array([1, -2, 42]);
    const m = new Float32Array(3);
    const v = new Float32Array(3);
    const steps = [new Float32Array([0.5, 0, 7]), new Float32Array([-0.25, 0.75, 7])];
    steps.forEach((g, i) => {
      const step = i + 1;
      K.adamw(p, g, m, v, 2, 0.1, 0.9, 0.99, 1e-8, 0.1, 1 - 0.9 ** step, 1 - 0.99 ** step, 2);
    });
    assertClose(p, [0.8544301, -2.034446, 42], "p", 2e-7, 0);
    assertClose(m, [0.04, 0.15, 0], "m", 1e-7, 0);
    assertClose(v, [0.0124, 0.0225, 0], "v", 1e-8, 0);
  });
});
