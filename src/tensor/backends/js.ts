/**
 * The pure-TypeScript reference backend: straightforward loops, single-threaded, float64
 * accumulation with float32 storage. Every other backend is tested against it
 * (test/tensor/parity.test.ts), so its doc comments state each edge-case choice.
 * The kernels live by concept in ./js/; this file assembles them into the Backend.
 */

import type { Backend } from "./backend.js";
import { adamw } from "./js/adamw.js";
import { attention, attentionBackward, rope } from "./js/attention.js";
import { conv2d, conv2dBackward, upsampleNearest, upsampleNearestBackward } from "./js/conv.js";
import { affine, axpy, binary, fill, pow, unary, unaryBackward } from "./js/elementwise.js";
import { gemm, gemmBatched } from "./js/gemm.js";
import { copyStrided, gatherRows, reduceSum, scatterAddRows, sumSquares } from "./js/layout.js";
import { groupnorm, groupnormBackward, rmsnorm, rmsnormBackward } from "./js/norm.js";
import { crossEntropy, crossEntropyBackward, softmax, softmaxBackward } from "./js/softmax.js";

export const jsBackend: Backend = {
  name: "js",
  threads: 1,
  gemm,
  gemmBatched,
  unary,
  unaryBackward,
  binary,
  affine,
  axpy,
  fill,
  pow,
  copyStrided,
  reduceSum,
  sumSquares,
  gatherRows,
  scatterAddRows,
  softmax,
  softmaxBackward,
  crossEntropy,
  crossEntropyBackward,
  rmsnorm,
  rmsnormBackward,
  groupnorm,
  groupnormBackward,
  rope,
  attention,
  attentionBackward,
  conv2d,
  conv2dBackward,
  upsampleNearest,
  upsampleNearestBackward,
  adamw,
};
