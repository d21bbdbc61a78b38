/**
 * The pure-TypeScript reference backend: straightforward loops, single-threaded, float64
 * accumulation with float32 storage. Every other backend is tested against it
 * (test/tensor/parity.test.ts), so its doc comments state each edge-case choice.
 * The kernels live by concept in ./js/, each file a part of the Backend whose parameter
 * types come from backend.ts; this file assembles them.
 */

import type { Backend } from "./backend.js";
import { hostMemory } from "./host-memory.js";
import { adamwKernels } from "./js/adamw.js";
import { attentionKernels } from "./js/attention.js";
import { convKernels } from "./js/conv.js";
import { elementwiseKernels } from "./js/elementwise.js";
import { gemmKernels } from "./js/gemm.js";
import { layoutKernels } from "./js/layout.js";
import { normKernels } from "./js/norm.js";
import { softmaxKernels } from "./js/softmax.js";

export const jsBackend: Backend = {
  name: "js",
  threads: 1,
  ...hostMemory,
  ...gemmKernels,
  ...elementwiseKernels,
  ...layoutKernels,
  ...softmaxKernels,
  ...normKernels,
  ...attentionKernels,
  ...convKernels,
  ...adamwKernels,
};
