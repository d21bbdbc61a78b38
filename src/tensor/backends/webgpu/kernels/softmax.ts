/**
 * Softmax and cross-entropy on WebGPU: Backend.softmax, softmaxBackward, crossEntropy and
 * crossEntropyBackward, on GPUBuffers.
 *
 * One workgroup of 64 invocations per row (see rows.ts); each row subtracts its maximum before
 * exponentiating, like the js reference, so large logits cannot overflow. Row sums are
 * float32 tree sums (js: float64). Targets are an i32 buffer; a negative target ignores the row.
 */

import { type GpuKernel, grid, MAIN, Params, prelude } from "../device.js";
import { ROW_WGSL } from "./rows.js";

/** WGSL of the row log-sum-exp of the kernels that bind the rows as `x`. */
const LOG_SUM_EXP = /* wgsl */ `
${ROW_WGSL}
// log Σ exp over x[o .. o + n), shifted by the row's maximum (uniform control flow only).
fn logSumExp(li: u32, o: u32, n: u32) -> f32 {
  var m = LOWEST;
  for (var c = li; c < n; c += WG) { m = max(m, x[o + c]); }
  m = rowMax(li, m);
  var s = 0.0;
  for (var c = li; c < n; c += WG) { s += exp(x[o + c] - m); }
  return m + log(rowSum(li, s));
}
`;

const SOFTMAX = /* wgsl */ `
${LOG_SUM_EXP}
override LOG: bool = false;
${prelude("rows: u32, cols: u32", "read x, read_write out")}

${MAIN} {
  let r = groupIndex(wid, nwg);
  let o = r * p.cols;
  let lse = logSumExp(li, o, p.cols);
  if (r >= p.rows) { return; } // past the last row of a wrapped grid
  for (var c = li; c < p.cols; c += WG) {
    if (LOG) { out[o + c] = x[o + c] - lse; } else { out[o + c] = exp(x[o + c] - lse); }
  }
}
`;

const SOFTMAX_BACKWARD = /* wgsl */ `
${ROW_WGSL}
override LOG: bool = false;
${prelude("rows: u32, cols: u32", "read y, read gy, read_write gx")}

${MAIN} {
  let r = groupIndex(wid, nwg);
  let o = r * p.cols;
  var d = 0.0;
  for (var c = li; c < p.cols; c += WG) {
    if (LOG) { d += gy[o + c]; } else { d += gy[o + c] * y[o + c]; }
  }
  let dot = rowSum(li, d);
  if (r >= p.rows) { return; }
  for (var c = li; c < p.cols; c += WG) {
    if (LOG) {
      gx[o + c] = gy[o + c] - exp(y[o + c]) * dot;
    } else {
      gx[o + c] = y[o + c] * (gy[o + c] - dot);
    }
  }
}
`;

const CROSS_ENTROPY = /* wgsl */ `
${LOG_SUM_EXP}
// x: the logits.
${prelude("rows: u32, V: u32", "read x, read targets: i32, read_write loss, read_write lse")}

${MAIN} {
  let r = groupIndex(wid, nwg);
  let o = r * p.V;
  let l = logSumExp(li, o, p.V);
  if (li == 0u && r < p.rows) {
    let t = targets[r];
    if (t < 0) {
      loss[r] = 0.0;
      lse[r] = 0.0;
    } else {
      loss[r] = l - x[o + u32(t)];
      lse[r] = l;
    }
  }
}
`;

const CROSS_ENTROPY_BACKWARD = /* wgsl */ `
${ROW_WGSL}
${prelude(
  "rows: u32, V: u32",
  "read logits, read targets: i32, read lse, read gLoss, read_write gLogits",
)}

${MAIN} {
  let r = groupIndex(wid, nwg);
  if (r >= p.rows) { return; }
  let o = r * p.V;
  let t = targets[r];
  let g = gLoss[r];
  let l = lse[r];
  for (var c = li; c < p.V; c += WG) {
    var v = 0.0;
    if (t >= 0) {
      v = g * exp(logits[o + c] - l);
      if (i32(c) == t) { v = g * (exp(logits[o + c] - l) - 1.0); }
    }
    gLogits[o + c] = v;
  }
}
`;

/** Backend.softmax: row softmax (or log-softmax when `log`) of x [rows, cols]. */
export const softmax: GpuKernel<"softmax"> = (rt, x, out, rows, cols, log) => {
  if (rows <= 0) return;
  const params = new Params().u32(rows).u32(cols);
  rt.dispatch(SOFTMAX, params, [x, out], grid(rows), { LOG: log ? 1 : 0 });
};

/** Backend.softmaxBackward from the softmax (or log-softmax) output y. */
export const softmaxBackward: GpuKernel<"softmaxBackward"> = (rt, y, gy, gx, rows, cols, log) => {
  if (rows <= 0) return;
  const params = new Params().u32(rows).u32(cols);
  rt.dispatch(SOFTMAX_BACKWARD, params, [y, gy, gx], grid(rows), { LOG: log ? 1 : 0 });
};

/** Backend.crossEntropy: loss[r] = lse_r − logits[r, t_r], lse saved; t_r < 0 gives 0, 0. */
export const crossEntropy: GpuKernel<"crossEntropy"> = (
  rt,
  logits,
  targets,
  loss,
  lse,
  rows,
  V,
) => {
  if (rows <= 0) return;
  const params = new Params().u32(rows).u32(V);
  rt.dispatch(CROSS_ENTROPY, params, [logits, targets, loss, lse], grid(rows));
};

/** Backend.crossEntropyBackward: gLogits = gLoss · (softmax − onehot), 0 on ignored rows. */
export const crossEntropyBackward: GpuKernel<"crossEntropyBackward"> = (rt, ...args) => {
  const [logits, targets, lse, gLoss, gLogits, rows, V] = args;
  if (rows <= 0) return;
  const params = new Params().u32(rows).u32(V);
  rt.dispatch(CROSS_ENTROPY_BACKWARD, params, [logits, targets, lse, gLoss, gLogits], grid(rows));
};
