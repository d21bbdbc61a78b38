/**
 * Elementwise kernels of the js backend. Every value is computed in float64 (JS numbers)
 * and rounded to float32 on store.
 */

import type { Backend, BinaryOp } from "../backend.js";
import { forEachRun, innerRun } from "./layout.js";

/** √(2/π), the constant of the tanh approximation of GELU. */
const GELU_K = Math.sqrt(2 / Math.PI);
const GELU_CUBIC = 0.044715;

/**
 * Returns GELU(x) by the tanh approximation 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))),
 * the variant GPT-2 used; the native backend must use the same formula, not erf.
 */
export function gelu(x: number): number {
  return 0.5 * x * (1 + Math.tanh(GELU_K * (x + GELU_CUBIC * x * x * x)));
}

/** Returns d GELU(x)/dx for the tanh approximation above. */
function geluGrad(x: number): number {
  const t = Math.tanh(GELU_K * (x + GELU_CUBIC * x * x * x));
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU_K * (1 + 3 * GELU_CUBIC * x * x);
}

/** Returns the logistic sigmoid 1/(1 + e^−x). */
function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

/** Writes out[o + i] = a[ap + i·as] ∘ b[bp + i·bs] for i < n. */
function binaryRun(
  op: BinaryOp,
  a: Float32Array,
  ap: number,
  as: number,
  b: Float32Array,
  bp: number,
  bs: number,
  out: Float32Array,
  o: number,
  n: number,
): void {
  switch (op) {
    case "add":
      for (let i = 0; i < n; i++) out[o + i] = a[ap + i * as]! + b[bp + i * bs]!;
      return;
    case "sub":
      for (let i = 0; i < n; i++) out[o + i] = a[ap + i * as]! - b[bp + i * bs]!;
      return;
    case "mul":
      for (let i = 0; i < n; i++) out[o + i] = a[ap + i * as]! * b[bp + i * bs]!;
      return;
    case "div":
      for (let i = 0; i < n; i++) out[o + i] = a[ap + i * as]! / b[bp + i * bs]!;
      return;
    case "max":
      for (let i = 0; i < n; i++) out[o + i] = Math.max(a[ap + i * as]!, b[bp + i * bs]!);
      return;
    case "min":
      for (let i = 0; i < n; i++) out[o + i] = Math.min(a[ap + i * as]!, b[bp + i * bs]!);
      return;
  }
}

export const elementwiseKernels: Pick<
  Backend,
  "unary" | "unaryBackward" | "binary" | "affine" | "axpy" | "fill" | "pow"
> = {
  /** Writes out[i] = f(x[i]) for i < n. */
  unary(op, x, out, n) {
    // One loop per op so the op is chosen once, not per element.
    switch (op) {
      case "exp":
        for (let i = 0; i < n; i++) out[i] = Math.exp(x[i]!);
        return;
      case "log":
        for (let i = 0; i < n; i++) out[i] = Math.log(x[i]!);
        return;
      case "sqrt":
        for (let i = 0; i < n; i++) out[i] = Math.sqrt(x[i]!);
        return;
      case "rsqrt":
        for (let i = 0; i < n; i++) out[i] = 1 / Math.sqrt(x[i]!);
        return;
      case "tanh":
        for (let i = 0; i < n; i++) out[i] = Math.tanh(x[i]!);
        return;
      case "sigmoid":
        for (let i = 0; i < n; i++) out[i] = sigmoid(x[i]!);
        return;
      case "silu":
        for (let i = 0; i < n; i++) out[i] = x[i]! * sigmoid(x[i]!);
        return;
      case "gelu":
        for (let i = 0; i < n; i++) out[i] = gelu(x[i]!);
        return;
      case "relu":
        for (let i = 0; i < n; i++) out[i] = Math.max(x[i]!, 0); // propagates NaN
        return;
      case "neg":
        for (let i = 0; i < n; i++) out[i] = -x[i]!;
        return;
      case "abs":
        for (let i = 0; i < n; i++) out[i] = Math.abs(x[i]!);
        return;
      case "square":
        for (let i = 0; i < n; i++) out[i] = x[i]! * x[i]!;
        return;
    }
  },

  /**
   * Writes gx[i] = gy[i] · f'(x[i]) for i < n, using the forward output y where it is cheaper.
   * At the kinks the derivative taken is 0: relu'(0) = 0 and abs'(0) = 0.
   */
  unaryBackward(op, x, y, gy, gx, n) {
    switch (op) {
      case "exp":
        for (let i = 0; i < n; i++) gx[i] = gy[i]! * y[i]!;
        return;
      case "log":
        for (let i = 0; i < n; i++) gx[i] = gy[i]! / x[i]!;
        return;
      case "sqrt":
        for (let i = 0; i < n; i++) gx[i] = (0.5 * gy[i]!) / y[i]!;
        return;
      case "rsqrt":
        // d x^(−1/2) = −½ x^(−3/2) = −½ y³.
        for (let i = 0; i < n; i++) gx[i] = -0.5 * gy[i]! * y[i]! * y[i]! * y[i]!;
        return;
      case "tanh":
        for (let i = 0; i < n; i++) gx[i] = gy[i]! * (1 - y[i]! * y[i]!);
        return;
      case "sigmoid":
        for (let i = 0; i < n; i++) gx[i] = gy[i]! * y[i]! * (1 - y[i]!);
        return;
      case "silu":
        // y/x would lose σ(x) at x = 0, so σ is recomputed from x.
        for (let i = 0; i < n; i++) {
          const s = sigmoid(x[i]!);
          gx[i] = gy[i]! * s * (1 + x[i]! * (1 - s));
        }
        return;
      case "gelu":
        for (let i = 0; i < n; i++) gx[i] = gy[i]! * geluGrad(x[i]!);
        return;
      case "relu":
        for (let i = 0; i < n; i++) gx[i] = x[i]! > 0 ? gy[i]! : 0;
        return;
      case "neg":
        for (let i = 0; i < n; i++) gx[i] = -gy[i]!;
        return;
      case "abs":
        for (let i = 0; i < n; i++) gx[i] = x[i]! > 0 ? gy[i]! : x[i]! < 0 ? -gy[i]! : 0;
        return;
      case "square":
        for (let i = 0; i < n; i++) gx[i] = 2 * x[i]! * gy[i]!;
        return;
    }
  },

  /**
   * Writes the broadcasting binary op over the contiguous out of `shape`; aStrides/bStrides
   * are 0 on broadcast dimensions. max and min propagate NaN (as Math.max/Math.min do).
   */
  binary(op, a, aStrides, b, bStrides, out, shape) {
    const [n, as, bs] = innerRun(shape, aStrides, bStrides);
    forEachRun(shape, aStrides, 0, bStrides, 0, (ap, bp, run) => {
      binaryRun(op, a, ap, as, b, bp, bs, out, run * n, n);
    });
  },

  /** Writes out[i] = alpha · x[i] + beta for i < n. */
  affine(x, out, n, alpha, beta) {
    for (let i = 0; i < n; i++) out[i] = alpha * x[i]! + beta;
  },

  /** Adds alpha · x[i] into y[i] for i < n. */
  axpy(n, alpha, x, y) {
    for (let i = 0; i < n; i++) y[i] += alpha * x[i]!;
  },

  /** Writes out[i] = value for i < n. */
  fill(out, n, value) {
    out.fill(value, 0, n);
  },

  /** Writes out[i] = x[i]^p for i < n (Math.pow semantics: 0^0 = 1, negative^fraction = NaN). */
  pow(x, out, n, p) {
    for (let i = 0; i < n; i++) out[i] = x[i]! ** p;
  },
};
