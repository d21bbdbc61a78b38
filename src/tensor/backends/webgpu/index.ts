/**
 * The `webgpu` backend, first step: the runtime (device.ts) and the WGSL kernels of the
 * contract's operations (kernels/), each a function of (runtime, the Backend method's
 * arguments with GPUBuffers for arrays). Kernels enqueue work and never read back; only
 * `WebGpuRuntime.read` is asynchronous. Differences from the Float32Array contract:
 * - index arrays (targets, gatherRows/scatterAddRows idx) are i32 buffers (rt.upload(Int32Array));
 * - the attention mask is the Uint8Array's bytes as uploaded (rt.upload(mask));
 * - sumSquares writes its float32 result to element 0 of a buffer instead of returning it;
 * - a writable buffer must not also be bound as another operand of the same call (WebGPU's
 *   aliasing rule); rope alone supports out === x, as the contract promises.
 * The Backend adapter, GPU-resident tensors and asynchronous reads in the tensor API are the
 * next steps (docs/ARCHITECTURE.md).
 */

export { type HostArray, WebGpuRuntime } from "./device.js";
export { adamw } from "./kernels/adamw.js";
export { attention, attentionBackward, MAX_HEAD_DIM, rope } from "./kernels/attention.js";
export {
  col2im,
  conv2d,
  conv2dBackward,
  im2col,
  upsampleNearest,
  upsampleNearestBackward,
} from "./kernels/conv.js";
export {
  affine,
  axpy,
  binary,
  fill,
  pow,
  unary,
  unaryBackward,
} from "./kernels/elementwise.js";
export { gemm, gemmBatched } from "./kernels/gemm.js";
export {
  copyStrided,
  gatherRows,
  reduceSum,
  scatterAddRows,
  sumSquares,
} from "./kernels/layout.js";
export { groupnorm, groupnormBackward, rmsnorm, rmsnormBackward } from "./kernels/norm.js";
export {
  crossEntropy,
  crossEntropyBackward,
  softmax,
  softmaxBackward,
} from "./kernels/softmax.js";
