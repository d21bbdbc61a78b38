/**
 * Elementwise kernels on WebGPU: Backend.unary, unaryBackward, binary (strided broadcasting),
 * affine, axpy, fill and pow, on GPUBuffers.
 *
 * One invocation per output element, 64 invocations per workgroup (a multiple of every
 * vendor's SIMD width — 32 or 64 — and small enough that odd sizes waste little), on a grid
 * that wraps into y past 65535 workgroups. The op is a pipeline-overridable constant (its code
 * in ops.ts), so each op is its own compiled pipeline with the switch folded away.
 * Values are float32 throughout (the js reference computes in float64 and rounds once), and
 * WGSL's transcendental functions are accurate to a few ulps; tanh is evaluated on a clamped
 * argument (|x| ≤ 15, where tanh is ±1 in float32) so no implementation can overflow to NaN.
 * WGSL does not guarantee NaN propagation, so NaN inputs may give other results than js.
 */

import { binaryCode, unaryCode } from "../../ops.js";
import { eachElement, type GpuKernel, grid, Params, prelude, WG } from "../device.js";

/** Maximum rank of binary's strided index space (as in the contract). */
export const MAX_RANK = 8;

/** Throws when `shape` has more than MAX_RANK dimensions. */
export function checkRank(what: string, shape: readonly number[]): void {
  if (shape.length > MAX_RANK) throw new Error(`${what}: rank ${shape.length} > ${MAX_RANK}`);
}

/**
 * WGSL of the strided kernels (binary, copyStrided), whose `dims` binding holds the shape and
 * two operands' element strides: `strided` peels the row-major index i of the shape into
 * per-dimension indices, last dimension first, and returns the two operands' offsets.
 */
export const STRIDED_WGSL = /* wgsl */ `
fn strided(i: u32, rank: u32) -> vec2<i32> {
  let r = i32(rank);
  var rest = i;
  var at = vec2<i32>(0, 0);
  for (var k = r - 1; k >= 0; k--) {
    let size = u32(dims[k]);
    let idx = i32(rest % size);
    rest = rest / size;
    at += idx * vec2<i32>(dims[r + k], dims[2 * r + k]);
  }
  return at;
}
`;

const SHARED = /* wgsl */ `
const GELU_K: f32 = 0.7978845608028654;
const GELU_CUBIC: f32 = 0.044715;
fn tanhSafe(x: f32) -> f32 { return tanh(clamp(x, -15.0, 15.0)); }
fn sigmoid(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }
`;

const UNARY = /* wgsl */ `
${SHARED}
override OP: u32 = 0u;
${prelude("n: u32", "read x, read_write out")}

fn f(v: f32) -> f32 {
  switch OP {
    case 0u: { return exp(v); }
    case 1u: { return log(v); }
    case 2u: { return sqrt(v); }
    case 3u: { return inverseSqrt(v); }
    case 4u: { return tanhSafe(v); }
    case 5u: { return sigmoid(v); }
    case 6u: { return v * sigmoid(v); }
    case 7u: { return 0.5 * v * (1.0 + tanhSafe(GELU_K * (v + GELU_CUBIC * v * v * v))); }
    case 8u: { return max(v, 0.0); }
    case 9u: { return -v; }
    case 10u: { return abs(v); }
    default: { return v * v; }
  }
}

${eachElement("out[i] = f(x[i]);")}
`;

const UNARY_BACKWARD = /* wgsl */ `
${SHARED}
override OP: u32 = 0u;
${prelude("n: u32", "read x, read y, read gy, read_write gx")}

// gy · f'(x), with y = f(x); the derivative at kinks (relu, abs at 0) is 0, as in js.
fn df(v: f32, w: f32, g: f32) -> f32 {
  switch OP {
    case 0u: { return g * w; }
    case 1u: { return g / v; }
    case 2u: { return 0.5 * g / w; }
    case 3u: { return -0.5 * g * w * w * w; }
    case 4u: { return g * (1.0 - w * w); }
    case 5u: { return g * w * (1.0 - w); }
    case 6u: { let s = sigmoid(v); return g * s * (1.0 + v * (1.0 - s)); }
    case 7u: {
      let t = tanhSafe(GELU_K * (v + GELU_CUBIC * v * v * v));
      return g * (0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * GELU_K * (1.0 + 3.0 * GELU_CUBIC * v * v));
    }
    case 8u: { return select(0.0, g, v > 0.0); }
    case 9u: { return -g; }
    case 10u: { return select(select(0.0, -g, v < 0.0), g, v > 0.0); }
    default: { return 2.0 * v * g; }
  }
}

${eachElement("gx[i] = df(x[i], y[i], gy[i]);")}
`;

const BINARY = /* wgsl */ `
${SHARED}
${STRIDED_WGSL}
override OP: u32 = 0u;
// dims = shape[0..rank), aStrides[0..rank), bStrides[0..rank)
${prelude("n: u32, rank: u32", "read a, read b, read_write out, read dims: i32")}

fn g(u: f32, v: f32) -> f32 {
  switch OP {
    case 0u: { return u + v; }
    case 1u: { return u - v; }
    case 2u: { return u * v; }
    case 3u: { return u / v; }
    case 4u: { return max(u, v); }
    default: { return min(u, v); }
  }
}

${eachElement(/* wgsl */ `
  let at = strided(i, p.rank);
  out[i] = g(a[at.x], b[at.y]);`)}
`;

const AFFINE = /* wgsl */ `
${prelude("n: u32, alpha: f32, beta: f32", "read x, read_write out")}
${eachElement("out[i] = p.alpha * x[i] + p.beta;")}
`;

const AXPY = /* wgsl */ `
${prelude("n: u32, alpha: f32", "read x, read_write y")}
${eachElement("y[i] += p.alpha * x[i];")}
`;

const FILL = /* wgsl */ `
${prelude("n: u32, value: f32", "read_write out")}
${eachElement("out[i] = p.value;")}
`;

const POW = /* wgsl */ `
${SHARED}
// inf and nan come in through the uniform: WGSL constants cannot be infinite or NaN.
${prelude("n: u32, e: f32, inf: f32, nan: f32", "read x, read_write out")}

// Math.pow semantics for the cases WGSL's pow leaves undefined (x ≤ 0): x^0 = 1, 0^e > 0 = 0,
// 0^e < 0 = ∞, negative x to an integer power keeps the parity's sign, to a fraction is NaN.
fn powJs(v: f32, e: f32) -> f32 {
  if (e == 0.0) { return 1.0; }
  if (v > 0.0) { return pow(v, e); }
  if (v == 0.0) { return select(p.inf, 0.0, e > 0.0); }
  if (floor(e) != e) { return p.nan; }
  let r = pow(-v, e);
  let odd = abs(e - 2.0 * floor(e / 2.0)) == 1.0;
  return select(r, -r, odd);
}

${eachElement("out[i] = powJs(x[i], p.e);")}
`;

/** Backend.unary: out[i] = f(x[i]) for i < n. */
export const unary: GpuKernel<"unary"> = (rt, op, x, out, n) => {
  rt.dispatch(UNARY, new Params().u32(n), [x, out], grid(n / WG), { OP: unaryCode(op) });
};

/** Backend.unaryBackward: gx[i] = gy[i] · f'(x[i]), y = f(x) the forward output. */
export const unaryBackward: GpuKernel<"unaryBackward"> = (rt, op, x, y, gy, gx, n) => {
  const params = new Params().u32(n);
  rt.dispatch(UNARY_BACKWARD, params, [x, y, gy, gx], grid(n / WG), { OP: unaryCode(op) });
};

/**
 * Backend.binary: the broadcasting op over a contiguous out of `shape` (rank ≤ 8), operands
 * read at their per-dimension element strides (0 on broadcast dimensions).
 */
export const binary: GpuKernel<"binary"> = (rt, op, a, aStrides, b, bStrides, out, shape) => {
  checkRank("binary", shape);
  const n = shape.reduce((s, d) => s * d, 1);
  if (n === 0) return;
  const meta = rt.upload(new Int32Array([...shape, ...aStrides, ...bStrides]));
  const params = new Params().u32(n).u32(shape.length);
  rt.dispatch(BINARY, params, [a, b, out, meta], grid(n / WG), { OP: binaryCode(op) });
  rt.release(meta);
};

/** Backend.affine: out[i] = alpha · x[i] + beta. */
export const affine: GpuKernel<"affine"> = (rt, x, out, n, alpha, beta) => {
  const params = new Params().u32(n).f32(alpha).f32(beta);
  rt.dispatch(AFFINE, params, [x, out], grid(n / WG));
};

/** Backend.axpy: y[i] += alpha · x[i] (accumulates). */
export const axpy: GpuKernel<"axpy"> = (rt, n, alpha, x, y) => {
  rt.dispatch(AXPY, new Params().u32(n).f32(alpha), [x, y], grid(n / WG));
};

/** Backend.fill: out[i] = value. */
export const fill: GpuKernel<"fill"> = (rt, out, n, value) => {
  rt.dispatch(FILL, new Params().u32(n).f32(value), [out], grid(n / WG));
};

/** Backend.pow: out[i] = x[i]^p with Math.pow's conventions at x ≤ 0. */
export const pow: GpuKernel<"pow"> = (rt, x, out, n, p) => {
  const params = new Params().u32(n).f32(p).f32(Number.POSITIVE_INFINITY).f32(Number.NaN);
  rt.dispatch(POW, params, [x, out], grid(n / WG));
};
