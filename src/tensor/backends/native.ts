/**
 * The native backend: the N-API addon built from native/ (OpenBLAS sgemm plus fused,
 * multi-threaded C++ kernels), wrapped as a `Backend`.
 *
 * The wrapper stays thin so small kernels keep low overhead: arguments pass straight
 * through, op names become the integer codes of backend.ts, and shapes/strides of the
 * strided kernels are packed into one reused Float64Array instead of plain arrays (which C
 * would have to read element by element through N-API). The addon validates every call and
 * throws an Error naming the kernel and argument.
 */

import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { AttentionShape, Backend, BinaryOp, UnaryOp } from "./backend.js";
import { binaryCode, unaryCode } from "./backend.js";

/** The functions the addon exports (see native/addon.cc and native/addon_nn.cc). */
interface Addon {
  threads(): number;
  sgemmDirectGflops(n: number, iters: number): number;
  gemm: Backend["gemm"];
  gemmBatched: Backend["gemmBatched"];
  unary(op: number, x: Float32Array, out: Float32Array, n: number): void;
  unaryBackward(
    op: number,
    x: Float32Array,
    y: Float32Array,
    gy: Float32Array,
    gx: Float32Array,
    n: number,
  ): void;
  binary(op: number, a: Float32Array, b: Float32Array, out: Float32Array, dims: Float64Array): void;
  affine: Backend["affine"];
  axpy: Backend["axpy"];
  fill: Backend["fill"];
  pow: Backend["pow"];
  copyStrided(src: Float32Array, dst: Float32Array, dims: Float64Array, accumulate: boolean): void;
  reduceSum(x: Float32Array, out: Float32Array, outSize: number, dims: Float64Array): void;
  sumSquares: Backend["sumSquares"];
  gatherRows: Backend["gatherRows"];
  scatterAddRows: Backend["scatterAddRows"];
  softmax: Backend["softmax"];
  softmaxBackward: Backend["softmaxBackward"];
  crossEntropy: Backend["crossEntropy"];
  crossEntropyBackward: Backend["crossEntropyBackward"];
  rmsnorm: Backend["rmsnorm"];
  rmsnormBackward: Backend["rmsnormBackward"];
  groupnorm: Backend["groupnorm"];
  groupnormBackward: Backend["groupnormBackward"];
  rope: Backend["rope"];
  attention(
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    mask: Uint8Array | null,
    out: Float32Array,
    lse: Float32Array,
    B: number,
    T: number,
    S: number,
    H: number,
    Hkv: number,
    D: number,
    scale: number,
    causal: boolean,
  ): void;
  attentionBackward(
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    mask: Uint8Array | null,
    out: Float32Array,
    lse: Float32Array,
    gOut: Float32Array,
    gq: Float32Array,
    gk: Float32Array,
    gv: Float32Array,
    B: number,
    T: number,
    S: number,
    H: number,
    Hkv: number,
    D: number,
    scale: number,
    causal: boolean,
  ): void;
  conv2d: Backend["conv2d"];
  conv2dBackward: Backend["conv2dBackward"];
  upsampleNearest: Backend["upsampleNearest"];
  upsampleNearestBackward: Backend["upsampleNearestBackward"];
  adamw: Backend["adamw"];
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

  return {
    name: "native",
    threads: addon.threads(),
    gemm: addon.gemm,
    gemmBatched: addon.gemmBatched,
    unary(op: UnaryOp, x, out, n) {
      addon.unary(unaryCode(op), x, out, n);
    },
    unaryBackward(op: UnaryOp, x, y, gy, gx, n) {
      addon.unaryBackward(unaryCode(op), x, y, gy, gx, n);
    },
    binary(op: BinaryOp, a, aStrides, b, bStrides, out, shape) {
      checkRank("binary", shape, aStrides, "aStrides");
      checkRank("binary", shape, bStrides, "bStrides");
      pack(0, shape, aStrides, bStrides);
      addon.binary(binaryCode(op), a, b, out, dims);
    },
    affine: addon.affine,
    axpy: addon.axpy,
    fill: addon.fill,
    pow: addon.pow,
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
    sumSquares: addon.sumSquares,
    gatherRows: addon.gatherRows,
    scatterAddRows: addon.scatterAddRows,
    softmax: addon.softmax,
    softmaxBackward: addon.softmaxBackward,
    crossEntropy: addon.crossEntropy,
    crossEntropyBackward: addon.crossEntropyBackward,
    rmsnorm: addon.rmsnorm,
    rmsnormBackward: addon.rmsnormBackward,
    groupnorm: addon.groupnorm,
    groupnormBackward: addon.groupnormBackward,
    rope: addon.rope,
    attention(q, k, v, mask, out, lse, s: AttentionShape) {
      addon.attention(q, k, v, mask, out, lse, s.B, s.T, s.S, s.H, s.Hkv, s.D, s.scale, s.causal);
    },
    attentionBackward(q, k, v, mask, out, lse, gOut, gq, gk, gv, s: AttentionShape) {
      addon.attentionBackward(
        q,
        k,
        v,
        mask,
        out,
        lse,
        gOut,
        gq,
        gk,
        gv,
        s.B,
        s.T,
        s.S,
        s.H,
        s.Hkv,
        s.D,
        s.scale,
        s.causal,
      );
    },
    conv2d: addon.conv2d,
    conv2dBackward: addon.conv2dBackward,
    upsampleNearest: addon.upsampleNearest,
    upsampleNearestBackward: addon.upsampleNearestBackward,
    adamw: addon.adamw,
  };
}

/**
 * Loads the addon from <package root>/build/Release/transfusion_native.node and returns it
 * wrapped as a Backend, or null with the reason it could not load.
 */
export function loadNativeBackend(): { backend: Backend | null; error: string | null } {
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
