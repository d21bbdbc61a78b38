/**
 * Softmax and cross-entropy kernels of the js backend. Every row subtracts its maximum
 * before exponentiating, so large logits cannot overflow; sums run in float64.
 */

import type { Backend } from "../backend.js";

/** Returns log Σ_c exp(x[o + c]) over c < cols, computed stably. */
export function logSumExp(x: Float32Array, o: number, cols: number): number {
  let max = Number.NEGATIVE_INFINITY;
  for (let c = 0; c < cols; c++) if (x[o + c]! > max) max = x[o + c]!;
  let sum = 0;
  for (let c = 0; c < cols; c++) sum += Math.exp(x[o + c]! - max);
  return max + Math.log(sum);
}

export const softmaxKernels: Pick<
  Backend,
  "softmax" | "softmaxBackward" | "crossEntropy" | "crossEntropyBackward"
> = {
  /** Writes the row softmax (or log-softmax when `log`) of x [rows, cols] into out. */
  softmax(x, out, rows, cols, log) {
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      const lse = logSumExp(x, o, cols);
      if (log) for (let c = 0; c < cols; c++) out[o + c] = x[o + c]! - lse;
      else for (let c = 0; c < cols; c++) out[o + c] = Math.exp(x[o + c]! - lse);
    }
  },

  /**
   * Writes gx from the softmax output y: gx = y ⊙ (gy − Σ gy⊙y), or for log-softmax
   * gx = gy − exp(y) · Σ gy.
   */
  softmaxBackward(y, gy, gx, rows, cols, log) {
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      let dot = 0;
      if (log) {
        for (let c = 0; c < cols; c++) dot += gy[o + c]!;
        for (let c = 0; c < cols; c++) gx[o + c] = gy[o + c]! - Math.exp(y[o + c]!) * dot;
      } else {
        for (let c = 0; c < cols; c++) dot += gy[o + c]! * y[o + c]!;
        for (let c = 0; c < cols; c++) gx[o + c] = y[o + c]! * (gy[o + c]! - dot);
      }
    }
  },

  /**
   * Writes loss[r] = logsumexp(logits_r) − logits[r, t_r] and lse[r]; rows with a negative
   * target are ignored (loss 0, lse 0). Targets are trusted to be < V.
   */
  crossEntropy(logits, targets, loss, lse, rows, V) {
    for (let r = 0; r < rows; r++) {
      const t = targets[r]!;
      if (t < 0) {
        loss[r] = 0;
        lse[r] = 0;
        continue;
      }
      const l = logSumExp(logits, r * V, V);
      loss[r] = l - logits[r * V + t]!;
      lse[r] = l;
    }
  },

  /** Writes gLogits[r, :] = gLoss[r] · (softmax(logits_r) − onehot(t_r)), zero for ignored rows. */
  crossEntropyBackward(logits, targets, lse, gLoss, gLogits, rows, V) {
    for (let r = 0; r < rows; r++) {
      const o = r * V;
      const t = targets[r]!;
      if (t < 0) {
        gLogits.fill(0, o, o + V);
        continue;
      }
      const g = gLoss[r]!;
      const l = lse[r]!;
      for (let c = 0; c < V; c++) gLogits[o + c] = g * Math.exp(logits[o + c]! - l);
      gLogits[o + t] = g * (Math.exp(logits[o + t]! - l) - 1);
    }
  },
};
