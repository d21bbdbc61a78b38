/**
 * Normalisation kernels of the js backend: RMSNorm and group normalisation (which covers
 * LayerNorm as one group). Statistics and weight-gradient sums run in float64; the saved
 * mean and rstd are float32, and the backward recomputes x̂ from those saved values.
 */

import type { Backend } from "../backend.js";

export const normKernels: Pick<
  Backend,
  "rmsnorm" | "rmsnormBackward" | "groupnorm" | "groupnormBackward"
> = {
  /** Writes out = x · rstd · w over the last dim and rstd[r] = 1/√(mean(x_r²) + eps). */
  rmsnorm(x, w, out, rstd, rows, dim, eps) {
    for (let r = 0; r < rows; r++) {
      const o = r * dim;
      let ss = 0;
      for (let c = 0; c < dim; c++) ss += x[o + c]! * x[o + c]!;
      const s = 1 / Math.sqrt(ss / dim + eps);
      rstd[r] = s;
      for (let c = 0; c < dim; c++) out[o + c] = x[o + c]! * s * w[c]!;
    }
  },

  /**
   * Writes gx and adds into gw for y = x · rstd · w. With s = rstd and u = Σ_c gy_c·w_c·x_c,
   * ∂/∂x_i = s·w_i·gy_i − s³·x_i·u / dim, because ∂s/∂x_i = −s³·x_i / dim.
   */
  rmsnormBackward(x, w, rstd, gy, gx, gw, rows, dim) {
    const gwAcc = new Float64Array(dim);
    for (let r = 0; r < rows; r++) {
      const o = r * dim;
      const s = rstd[r]!;
      let u = 0;
      for (let c = 0; c < dim; c++) u += gy[o + c]! * w[c]! * x[o + c]!;
      const k = (s * s * s * u) / dim;
      for (let c = 0; c < dim; c++) {
        gx[o + c] = s * w[c]! * gy[o + c]! - k * x[o + c]!;
        gwAcc[c] += gy[o + c]! * x[o + c]! * s;
      }
    }
    for (let c = 0; c < dim; c++) gw[c] += gwAcc[c]!;
  },

  /**
   * Writes out = (x − mean)·rstd·w[c] + b[c] for x viewed as [N, G, M], M = channels·spatial/G,
   * where element e of a sample belongs to channel floor(e / spatial). The variance is the
   * biased one (divided by M), as in PyTorch; mean and rstd are saved per (n, g).
   */
  groupnorm(x, w, b, out, mean, rstd, N, G, channels, spatial, eps) {
    const M = (channels * spatial) / G;
    // Group ng = n·G + g is the contiguous run x[ng·M, (ng + 1)·M).
    for (let ng = 0; ng < N * G; ng++) {
      const start = ng * M;
      const first = (ng % G) * M; // index of the group's first element within its sample
      let sum = 0;
      for (let e = 0; e < M; e++) sum += x[start + e]!;
      const mu = sum / M;
      // Two passes: Σ(x − mean)² does not cancel catastrophically like Σx² − M·mean².
      let sq = 0;
      for (let e = 0; e < M; e++) sq += (x[start + e]! - mu) ** 2;
      const s = 1 / Math.sqrt(sq / M + eps);
      mean[ng] = mu;
      rstd[ng] = s;
      for (let e = 0; e < M; e++) {
        const c = Math.floor((first + e) / spatial);
        const xhat = (x[start + e]! - mu) * s;
        out[start + e] = xhat * (w ? w[c]! : 1) + (b ? b[c]! : 0);
      }
    }
  },

  /**
   * Writes gx and adds into gw/gb when given. With x̂ = (x − mean)·rstd and ĝ = gy·w[c], the
   * group-wise gradient is gx = rstd · (ĝ − mean(ĝ) − x̂ · mean(ĝ·x̂)).
   */
  groupnormBackward(x, w, mean, rstd, gy, gx, gw, gb, N, G, channels, spatial) {
    const M = (channels * spatial) / G;
    const gwAcc = new Float64Array(channels);
    const gbAcc = new Float64Array(channels);
    for (let ng = 0; ng < N * G; ng++) {
      const start = ng * M;
      const first = (ng % G) * M;
      const mu = mean[ng]!;
      const s = rstd[ng]!;
      let sumG = 0;
      let sumGX = 0;
      for (let e = 0; e < M; e++) {
        const c = Math.floor((first + e) / spatial);
        const xhat = (x[start + e]! - mu) * s;
        const ghat = gy[start + e]! * (w ? w[c]! : 1);
        sumG += ghat;
        sumGX += ghat * xhat;
        gwAcc[c] += gy[start + e]! * xhat;
        gbAcc[c] += gy[start + e]!;
      }
      const meanG = sumG / M;
      const meanGX = sumGX / M;
      for (let e = 0; e < M; e++) {
        const c = Math.floor((first + e) / spatial);
        const xhat = (x[start + e]! - mu) * s;
        const ghat = gy[start + e]! * (w ? w[c]! : 1);
        gx[start + e] = s * (ghat - meanG - xhat * meanGX);
      }
    }
    if (gw) for (let c = 0; c < channels; c++) gw[c] += gwAcc[c]!;
    if (gb) for (let c = 0; c < channels; c++) gb[c] += gbAcc[c]!;
  },
};
