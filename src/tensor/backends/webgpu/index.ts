/**
 * The `webgpu` backend: the runtime (device.ts), the WGSL kernels of the contract's operations
 * (kernels/) and the Backend adapter (backend.ts: `webGpuBackend(rt)`, `createWebGpuBackend()`),
 * whose arrays (GpuArray) stay in GPU memory between kernels; only `read` is asynchronous.
 *
 * The kernels are functions of (runtime, the Backend method's arguments with GPUBuffers for
 * arrays) that only enqueue work. Where they differ from the contract, the adapter bridges:
 * - index arrays (targets, gatherRows/scatterAddRows idx) are i32 buffers (rt.upload(Int32Array));
 * - the attention mask is the Uint8Array's bytes as uploaded (rt.upload(mask));
 * - sumSquares writes its float32 result to element `at` (default 0) of a buffer;
 * - a writable buffer must not also be bound as another operand of the same call (WebGPU's
 *   aliasing rule); rope alone supports out === x, as the contract promises. The adapter
 *   binds an input that is also an output as a scratch copy.
 * The runtime records kernels into batches submitted at reads, writes, `flush()` and the end of
 * the current task (device.ts).
 */

export { createWebGpuBackend, GpuArray, type WebGpuBackend, webGpuBackend } from "./backend.js";
export { BATCH, type HostArray, WebGpuRuntime } from "./device.js";
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
