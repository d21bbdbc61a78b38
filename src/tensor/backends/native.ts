/**
 * The native backend: the N-API addon built from native/ (OpenBLAS sgemm plus fused,
 * multi-threaded C++ kernels), wrapped as a `Backend`.
 *
 * The wrapper stays thin so small kernels keep low overhead: arguments pass straight
 * through, op names become the integer codes of ops.ts, and shapes/strides of the
 * strided kernels are packed into one reused Float64Array instead of plain arrays (which C
 * would have to read element by element through N-API). The addon validates every call and
 * throws an Error naming the kernel and argument.
 */

import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { AttentionShape, Backend } from "./backend.js";
import { hostMemory } from "./host-memory.js";
import { binaryCode, unaryCode } from "./ops.js";

/** The kernels the addon exports with exactly their Backend signature: passed through as is. */
const PASSED_THROUGH = [
  "gemm",
  "gemmBatched",
  "affine",
  "axpy",
  "fill",
  "pow",
  "gatherRows",
  "scatterAddRows",
  "softmax",
  "softmaxBackward",
  "crossEntropy",
  "crossEntropyBackward",
  "rmsnorm",
  "rmsnormBackward",
  "groupnorm",
  "groupnormBackward",
  "rope",
  "conv2d",
  "conv2dBackward",
  "upsampleNearest",
  "upsampleNearestBackward",
  "adamw",
] as const satisfies readonly (keyof Backend)[];

type PassedThrough = (typeof PASSED_THROUGH)[number];

/** Kernel F with its leading op name passed as the op's integer code (see ops.ts). */
type WithOpCode<F> = F extends (op: never, ...rest: infer R) => void
  ? (op: number, ...rest: R) => void
  : never;

/** An AttentionShape as the addon takes it: flat trailing arguments, in this order. */
type FlatAttentionShape = [
  B: number,
  T: number,
  S: number,
  H: number,
  Hkv: number,
  D: number,
  scale: number,
  causal: boolean,
];

/** Kernel F with its trailing AttentionShape passed as FlatAttentionShape arguments. */
type WithFlatShape<F> = F extends (...args: [...infer A, AttentionShape]) => void
  ? (...args: [...A, ...FlatAttentionShape]) => void
  : never;

/** Returns s as the addon's flat attention arguments. */
function flatten(s: AttentionShape): FlatAttentionShape {
  return [s.B, s.T, s.S, s.H, s.Hkv, s.D, s.scale, s.causal];
}

/**
 * The functions the addon exports (see native/addon.cc and native/addon_nn.cc): the
 * PASSED_THROUGH kernels, and the others with their arguments recoded as below.
 */
interface Addon extends Pick<Backend, PassedThrough> {
  threads(): number;
  sgemmDirectGflops(n: number, iters: number): number;
  sumSquares(x: Float32Array, n: number): number;
  unary: WithOpCode<Backend["unary"]>;
  unaryBackward: WithOpCode<Backend["unaryBackward"]>;
  binary(op: number, a: Float32Array, b: Float32Array, out: Float32Array, dims: Float64Array): void;
  copyStrided(src: Float32Array, dst: Float32Array, dims: Float64Array, accumulate: boolean): void;
  reduceSum(x: Float32Array, out: Float32Array, outSize: number, dims: Float64Array): void;
  attention: WithFlatShape<Backend["attention"]>;
  attentionBackward: WithFlatShape<Backend["attentionBackward"]>;
}

const MAX_RANK = 8;

/** Returns the package root: three levels above this file in both src/ and dist/ layouts. */
function packageRoot(): string {
  return join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
}

/**
 * Returns how to build the addon, phrased for where the package sits: inside a user's
 * node_modules `npm run build:native` does not exist in their project, so the hint is
 * `npm rebuild transfusion` there, and `npm run build:native` in a clone of this package.
 */
export function nativeBuildHint(root: string = packageRoot()): string {
  const installed = root.split(/[\\/]/).includes("node_modules");
  const how = installed
    ? "run `npm rebuild transfusion` in your project"
    : "run `npm run build:native`";
  return `install g++ and libopenblas-dev, then ${how}`;
}

let addonCache: { addon: Addon | null; error: string | null } | null = null;

function loadAddon(): { addon: Addon | null; error: string | null } {
  if (addonCache) return addonCache;
  const path = join(packageRoot(), "build", "Release", "transfusion_native.node");
  try {
    const require = createRequire(import.meta.url);
    addonCache = { addon: require(path) as Addon, error: null };
  } catch (e) {
    const why = e instanceof Error ? e.message.split("\n")[0] : String(e);
    addonCache = { addon: null, error: `cannot load ${path}: ${why}` };
  }
  return addonCache;
}

/** Throws unless `strides` has one entry per dimension of `shape` (rank ≤ 8). */
function checkRank(
  kernel: string,
  shape: readonly number[],
  strides: readonly number[],
  name: string,
): void {
  if (shape.length > MAX_RANK) {
    throw new Error(
      `native ${kernel}: argument 'shape' has rank ${shape.length}, more than ${MAX_RANK}`,
    );
  }
  if (strides.length !== shape.length) {
    throw new Error(
      `native ${kernel}: argument '${name}' has ${strides.length} entries for a shape of rank ${shape.length}`,
    );
  }
}

/** Wraps the addon as a Backend. */
function wrap(addon: Addon): Backend {
  // One scratch array for packed shapes and strides: [header…, rank, shape…, strides…].
  // Calls are synchronous, so reusing it is safe.
  const dims = new Float64Array(3 + 3 * MAX_RANK);

  /** Packs rank, shape and stride lists into `dims` starting at `at`. */
  function pack(
    at: number,
    shape: readonly number[],
    s1: readonly number[],
    s2?: readonly number[],
  ): void {
    const r = shape.length;
    dims[at] = r;
    for (let d = 0; d < r; d++) {
      dims[at + 1 + d] = shape[d]!;
      dims[at + 1 + r + d] = s1[d]!;
      if (s2) dims[at + 1 + 2 * r + d] = s2[d]!;
    }
  }

  const passedThrough = Object.fromEntries(PASSED_THROUGH.map((k) => [k, addon[k]]));
  return {
    name: "native",
    threads: addon.threads(),
    ...hostMemory,
    ...(passedThrough as Pick<Backend, PassedThrough>),
    sumSquares(x, n, out, at) {
      out[at] = addon.sumSquares(x, n);
    },
    unary(op, x, out, n) {
      addon.unary(unaryCode(op), x, out, n);
    },
    unaryBackward(op, x, y, gy, gx, n) {
      addon.unaryBackward(unaryCode(op), x, y, gy, gx, n);
    },
    binary(op, a, aStrides, b, bStrides, out, shape) {
      checkRank("binary", shape, aStrides, "aStrides");
      checkRank("binary", shape, bStrides, "bStrides");
      pack(0, shape, aStrides, bStrides);
      addon.binary(binaryCode(op), a, b, out, dims);
    },
    copyStrided(src, srcOffset, srcStrides, dst, dstOffset, dstStrides, shape, accumulate) {
      checkRank("copyStrided", shape, srcStrides, "srcStrides");
      checkRank("copyStrided", shape, dstStrides, "dstStrides");
      dims[0] = srcOffset;
      dims[1] = dstOffset;
      pack(2, shape, srcStrides, dstStrides);
      addon.copyStrided(src, dst, dims, accumulate);
    },
    reduceSum(x, shape, out, outStrides, outSize) {
      checkRank("reduceSum", shape, outStrides, "outStrides");
      pack(0, shape, outStrides);
      addon.reduceSum(x, out, outSize, dims);
    },
    attention(q, k, v, mask, out, lse, shape) {
      addon.attention(q, k, v, mask, out, lse, ...flatten(shape));
    },
    attentionBackward(q, k, v, mask, out, lse, gOut, gq, gk, gv, shape) {
      addon.attentionBackward(q, k, v, mask, out, lse, gOut, gq, gk, gv, ...flatten(shape));
    },
  };
}

/** The native backend, or null with the reason it could not load. */
export interface NativeBackendLoad {
  backend: Backend | null;
  error: string | null;
}

/**
 * Loads the addon from <package root>/build/Release/transfusion_native.node and returns it
 * wrapped as a Backend, or null with the reason it could not load.
 */
export function loadNativeBackend(): NativeBackendLoad {
  const { addon, error } = loadAddon();
  if (!addon) return { backend: null, error };
  try {
    return { backend: wrap(addon), error: null };
  } catch (e) {
    return { backend: null, error: e instanceof Error ? e.message : String(e) };
  }
}

/**
 * Returns the GFLOP/s of n×n×n sgemm run by OpenBLAS's own threads (its default set-up),
 * measured from C over `iters` calls: the roofline our gemm is compared against. Null when
 * the addon is not built.
 */
export function nativeSgemmDirectGflops(n: number, iters: number): number | null {
  const { addon } = loadAddon();
  return addon ? addon.sgemmDirectGflops(n, iters) : null;
}
