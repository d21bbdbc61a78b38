/**
 * Layout kernels on WebGPU: Backend.copyStrided, reduceSum, sumSquares, gatherRows and
 * scatterAddRows, on GPUBuffers.
 *
 * - copyStrided and gatherRows: one invocation per element, 64 per workgroup.
 * - reduceSum: one workgroup of 64 invocations per output entry; the invocations stride over
 *   the reduced index space and combine their partial sums by a tree in workgroup memory, so
 *   a full reduction is as parallel as a per-row one.
 * - sumSquares: one workgroup of 256 invocations strides over x and tree-reduces; the sum
 *   is written to element `at` of a buffer (it stays on the device: only reads are
 *   asynchronous).
 * - scatterAddRows: one invocation per column walks the rows in order, so repeated indices add
 *   up without atomics (WGSL has no float atomics) and in the same order as js.
 * Sums are float32 (js: float64).
 */

import {
  eachElement,
  type GpuKernel,
  grid,
  MAIN,
  Params,
  prelude,
  type WebGpuRuntime,
  WG,
} from "../device.js";
import { checkRank, STRIDED_WGSL } from "./elementwise.js";

const COPY = /* wgsl */ `
${STRIDED_WGSL}
// dims = shape[0..rank), srcStrides[0..rank), dstStrides[0..rank)
${prelude(
  "n: u32, rank: u32, srcOffset: i32, dstOffset: i32, accumulate: u32",
  "read src, read_write dst, read dims: i32",
)}

${eachElement(/* wgsl */ `
  let at = strided(i, p.rank) + vec2<i32>(p.srcOffset, p.dstOffset);
  if (p.accumulate != 0u) { dst[at.y] += src[at.x]; } else { dst[at.y] = src[at.x]; }`)}
`;

const REDUCE_SUM = /* wgsl */ `
// dims = shape[0..rank), xStrides (contiguous), outStrides (0 on reduced dims)
${prelude("outSize: u32, rank: u32", "read x, read_write out, read dims: i32")}

var<workgroup> partial: array<f32, ${WG}>;

${MAIN} {
  let o = groupIndex(wid, nwg);
  let r = i32(p.rank);
  // Position of this output's first term in x, and the size of the reduced index space.
  var base = 0i;
  var count = 1u;
  for (var k = 0; k < r; k++) {
    let os = dims[2 * r + k];
    if (os != 0) {
      base += ((i32(o) / os) % dims[k]) * dims[r + k];
    } else {
      count *= u32(dims[k]);
    }
  }
  var acc = 0.0;
  for (var t = li; t < count; t += WG) {
    // Peel t into the reduced dimensions, last first.
    var rest = t;
    var xp = base;
    for (var k = r - 1; k >= 0; k--) {
      if (dims[2 * r + k] == 0) {
        let size = u32(dims[k]);
        xp += i32(rest % size) * dims[r + k];
        rest = rest / size;
      }
    }
    acc += x[xp];
  }
  partial[li] = acc;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s = s >> 1u) {
    if (li < s) { partial[li] += partial[li + s]; }
    workgroupBarrier();
  }
  if (li == 0u && o < p.outSize) { out[o] = partial[0]; }
}
`;

const SUM_SQUARES = /* wgsl */ `
${prelude("n: u32, at: u32", "read x, read_write out")}
var<workgroup> partial: array<f32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32) {
  var acc = 0.0;
  for (var i = li; i < p.n; i += 256u) { acc += x[i] * x[i]; }
  partial[li] = acc;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s = s >> 1u) {
    if (li < s) { partial[li] += partial[li + s]; }
    workgroupBarrier();
  }
  if (li == 0u) { out[p.at] = partial[0]; }
}
`;

const GATHER = /* wgsl */ `
${prelude("rows: u32, dim: u32", "read table, read idx: i32, read_write out")}
${MAIN} {
  let e = groupIndex(wid, nwg) * WG + li;
  if (e >= p.rows * p.dim) { return; }
  let r = e / p.dim;
  let c = e % p.dim;
  out[e] = table[u32(idx[r]) * p.dim + c];
}
`;

const SCATTER_ADD = /* wgsl */ `
${prelude("rows: u32, dim: u32", "read gOut, read idx: i32, read_write gTable")}
${MAIN} {
  let c = groupIndex(wid, nwg) * WG + li;
  if (c >= p.dim) { return; }
  for (var r = 0u; r < p.rows; r++) {
    gTable[u32(idx[r]) * p.dim + c] += gOut[r * p.dim + c];
  }
}
`;

/**
 * Backend.copyStrided: dst[dstOffset + Σ idx·dstStrides] = (or +=) src[srcOffset + Σ
 * idx·srcStrides]. With `accumulate`, the destination positions must be distinct (invocations
 * run in parallel).
 */
export const copyStrided: GpuKernel<"copyStrided"> = (rt, src, srcOffset, srcStrides, ...rest) => {
  const [dst, dstOffset, dstStrides, shape, accumulate] = rest;
  checkRank("copyStrided", shape);
  const n = shape.reduce((s, d) => s * d, 1);
  if (n === 0) return;
  const dims = rt.upload(new Int32Array([...shape, ...srcStrides, ...dstStrides]));
  const params = new Params()
    .u32(n)
    .u32(shape.length)
    .i32(srcOffset)
    .i32(dstOffset)
    .u32(accumulate ? 1 : 0);
  rt.dispatch(COPY, params, [src, dst, dims], grid(n / WG));
  rt.release(dims);
};

/**
 * Backend.reduceSum: out[0..outSize) = Σ of the contiguous x over the dimensions of `shape`
 * where outStrides is 0 (overwrites out).
 */
export const reduceSum: GpuKernel<"reduceSum"> = (rt, x, shape, out, outStrides, outSize) => {
  checkRank("reduceSum", shape);
  if (outSize <= 0) return;
  const xStrides: number[] = [];
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    xStrides[d] = s;
    s *= shape[d]!;
  }
  const dims = rt.upload(new Int32Array([...shape, ...xStrides, ...outStrides]));
  const params = new Params().u32(outSize).u32(shape.length);
  rt.dispatch(REDUCE_SUM, params, [x, out, dims], grid(outSize));
  rt.release(dims);
};

/** Backend.sumSquares: out[at] = Σ x[i]² over i < n (float32; `at` defaults to 0). */
export function sumSquares(rt: WebGpuRuntime, x: GPUBuffer, n: number, out: GPUBuffer, at = 0) {
  rt.dispatch(SUM_SQUARES, new Params().u32(n).u32(at), [x, out], [1, 1, 1]);
}

/** Backend.gatherRows: out[r, :] = table[idx[r], :] (idx an i32 buffer, trusted). */
export const gatherRows: GpuKernel<"gatherRows"> = (rt, table, idx, out, rows, dim) => {
  const params = new Params().u32(rows).u32(dim);
  rt.dispatch(GATHER, params, [table, idx, out], grid((rows * dim) / WG));
};

/** Backend.scatterAddRows: gTable[idx[r], :] += gOut[r, :] (accumulates). */
export const scatterAddRows: GpuKernel<"scatterAddRows"> = (rt, gOut, idx, gTable, rows, dim) => {
  const params = new Params().u32(rows).u32(dim);
  rt.dispatch(SCATTER_ADD, params, [gOut, idx, gTable], grid(dim / WG));
};
