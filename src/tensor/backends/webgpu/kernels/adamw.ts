/**
 * The fused AdamW step on WebGPU (Backend.adamw), on GPUBuffers: one invocation per
 * parameter, 64 per workgroup; p, m and v are updated in place. The step is computed in
 * float32 from the new m and v (the js reference uses float64 before rounding).
 */

import { eachElement, type GpuKernel, grid, Params, prelude, WG } from "../device.js";

const ADAMW = /* wgsl */ `
${prelude(
  `n: u32, lr: f32, beta1: f32, beta2: f32,
  eps: f32, weightDecay: f32, bc1: f32, bc2: f32,
  gradScale: f32,`,
  "read_write param, read g, read_write m, read_write v",
)}

${eachElement(/* wgsl */ `
  let grad = g[i] * p.gradScale;
  let mi = p.beta1 * m[i] + (1.0 - p.beta1) * grad;
  let vi = p.beta2 * v[i] + (1.0 - p.beta2) * grad * grad;
  m[i] = mi;
  v[i] = vi;
  let update = mi / p.bc1 / (sqrt(vi / p.bc2) + p.eps) + p.weightDecay * param[i];
  param[i] = param[i] - p.lr * update;`)}
`;

/** Backend.adamw: one fused AdamW step over n parameters (p, m, v updated in place). */
export const adamw: GpuKernel<"adamw"> = (rt, p, g, m, v, n, ...scalars) => {
  // lr, beta1, beta2, eps, weightDecay, bc1, bc2, gradScale: the order of struct P.
  const params = new Params().u32(n);
  for (const x of scalars) params.f32(x);
  rt.dispatch(ADAMW, params, [p, g, m, v], grid(n / WG));
};
