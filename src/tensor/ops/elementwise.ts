/** Elementwise ops with broadcasting, and their gradients. */

import type { BinaryOp, UnaryOp } from "../backends/backend.js";
import { backend } from "../backends/current.js";
import { alloc } from "../pool.js";
import { accumulateGrad, record, type Shape, stridesOf, Tensor, zeros } from "../tensor.js";
import { broadcastShapes, broadcastStrides, coalesce, sameShape } from "./broadcast.js";

/**
 * Returns the sum of `g` (laid out as `from`) reduced to `to`: `g` itself when the shapes are
 * equal (the caller decides whether it may be kept), else a fresh buffer.
 */
export function reduceTo(g: Float32Array, from: Shape, to: Shape): Float32Array {
  if (sameShape(from, to)) return g;
  const outStrides = broadcastStrides(to, from);
  let outSize = 1;
  for (const d of to) outSize *= d;
  const out = alloc(outSize);
  const c = coalesce(from, outStrides, stridesOf(from));
  backend().reduceSum(g, c.shape, out, c.strides[0]!, outSize);
  return out;
}

function binaryForward(op: BinaryOp, a: Tensor, b: Tensor, shape: number[]): Tensor {
  const out = zeros(shape);
  if (sameShape(a.shape, shape) && sameShape(b.shape, shape)) {
    backend().binary(op, a.f32, [1], b.f32, [1], out.f32, [out.size]);
  } else {
    const c = coalesce(shape, broadcastStrides(a.shape, shape), broadcastStrides(b.shape, shape));
    backend().binary(op, a.f32, c.strides[0]!, b.f32, c.strides[1]!, out.f32, c.shape);
  }
  return out;
}

function binaryOp(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  const shape = broadcastShapes(a.shape, b.shape, op);
  const out = binaryForward(op, a, b, shape);
  return record(op, out, [a, b], (g) => {
    const be = backend();
    const gShape = shape;
    // The output gradient is dead once this rule returns, so one input may keep it; every
    // other buffer made here is fresh and owned by whoever receives it.
    let gTaken = false;
    const send = (x: Tensor, buf: Float32Array) => {
      const r = reduceTo(buf, gShape, x.shape);
      const own = r !== g || !gTaken;
      if (r === g) gTaken = true;
      accumulateGrad(x, r, own);
    };
    const sendA = (buf: Float32Array) => send(a, buf);
    const sendB = (buf: Float32Array) => send(b, buf);
    switch (op) {
      case "add":
        if (a.requiresGrad) sendA(g);
        if (b.requiresGrad) sendB(g);
        return;
      case "sub":
        if (a.requiresGrad) sendA(g);
        if (b.requiresGrad) {
          const ng = alloc(g.length);
          be.affine(g, ng, g.length, -1, 0);
          sendB(ng);
        }
        return;
      case "mul": {
        const gt = new Tensor(g, gShape);
        if (a.requiresGrad) sendA(binaryForward("mul", gt, b, gShape).f32);
        if (b.requiresGrad) sendB(binaryForward("mul", gt, a, gShape).f32);
        return;
      }
      case "div": {
        const gt = new Tensor(g, gShape);
        const ga = binaryForward("div", gt, b, gShape);
        if (a.requiresGrad) sendA(ga.f32);
        if (b.requiresGrad) {
          // d(a/b)/db = −a/b²; computed as −(g/b)/b·a so a = 0 gives an exact 0.
          const t = binaryForward("mul", binaryForward("div", ga, b, gShape), a, gShape).f32;
          be.affine(t, t, t.length, -1, 0);
          sendB(t);
        }
        return;
      }
      case "max":
      case "min": {
        // The gradient goes to whichever operand was selected (ties: a).
        const aFull = expandTo(a, gShape);
        const bFull = expandTo(b, gShape);
        const o = out.f32;
        const gaBuf = alloc(g.length);
        const gbBuf = alloc(g.length);
        for (let i = 0; i < g.length; i++) {
          if (o[i] === aFull[i]) gaBuf[i] = g[i]!;
          else if (o[i] === bFull[i]) gbBuf[i] = g[i]!;
        }
        if (a.requiresGrad) sendA(gaBuf);
        if (b.requiresGrad) sendB(gbBuf);
        return;
      }
    }
  });
}

/** Returns x's values broadcast to `shape`, as a fresh buffer. */
export function expandTo(x: Tensor, shape: Shape): Float32Array {
  let n = 1;
  for (const d of shape) n *= d;
  const out = alloc(n);
  const c = coalesce(shape, broadcastStrides(x.shape, shape), stridesOf(shape));
  backend().copyStrided(x.f32, 0, c.strides[0]!, out, 0, c.strides[1]!, c.shape, false);
  return out;
}

/** Returns a + b (broadcasting). */
export function add(a: Tensor, b: Tensor): Tensor {
  return binaryOp("add", a, b);
}
/** Returns a − b (broadcasting). */
export function sub(a: Tensor, b: Tensor): Tensor {
  return binaryOp("sub", a, b);
}
/** Returns a ⊙ b (broadcasting). */
export function mul(a: Tensor, b: Tensor): Tensor {
  return binaryOp("mul", a, b);
}
/** Returns a / b (broadcasting). */
export function div(a: Tensor, b: Tensor): Tensor {
  return binaryOp("div", a, b);
}
/** Returns the elementwise maximum (broadcasting). */
export function maximum(a: Tensor, b: Tensor): Tensor {
  return binaryOp("max", a, b);
}
/** Returns the elementwise minimum (broadcasting). */
export function minimum(a: Tensor, b: Tensor): Tensor {
  return binaryOp("min", a, b);
}

/** Returns alpha·x + beta. */
export function affine(x: Tensor, alpha: number, beta = 0): Tensor {
  const out = zeros(x.shape);
  backend().affine(x.f32, out.f32, x.size, alpha, beta);
  return record("affine", out, [x], (g) => {
    const gx = alloc(g.length);
    backend().affine(g, gx, g.length, alpha, 0);
    accumulateGrad(x, gx, true);
  });
}

/** Returns x · s. */
export function scale(x: Tensor, s: number): Tensor {
  return affine(x, s, 0);
}

/** Returns x + s. */
export function addScalar(x: Tensor, s: number): Tensor {
  return affine(x, 1, s);
}

/** Returns x^p elementwise. */
export function pow(x: Tensor, p: number): Tensor {
  const out = zeros(x.shape);
  backend().pow(x.f32, out.f32, x.size, p);
  return record("pow", out, [x], (g) => {
    const d = alloc(g.length);
    backend().pow(x.f32, d, x.size, p - 1);
    const gx = alloc(g.length);
    for (let i = 0; i < g.length; i++) gx[i] = g[i]! * p * d[i]!;
    accumulateGrad(x, gx, true);
  });
}

function unaryOp(op: UnaryOp, x: Tensor): Tensor {
  const out = zeros(x.shape);
  backend().unary(op, x.f32, out.f32, x.size);
  return record(op, out, [x], (g) => {
    const gx = alloc(g.length);
    backend().unaryBackward(op, x.f32, out.f32, g, gx, x.size);
    accumulateGrad(x, gx, true);
  });
}

/** Returns e^x. */
export const exp = (x: Tensor): Tensor => unaryOp("exp", x);
/** Returns ln x. */
export const log = (x: Tensor): Tensor => unaryOp("log", x);
/** Returns √x. */
export const sqrt = (x: Tensor): Tensor => unaryOp("sqrt", x);
/** Returns 1/√x. */
export const rsqrt = (x: Tensor): Tensor => unaryOp("rsqrt", x);
/** Returns tanh x. */
export const tanh = (x: Tensor): Tensor => unaryOp("tanh", x);
/** Returns the logistic sigmoid of x. */
export const sigmoid = (x: Tensor): Tensor => unaryOp("sigmoid", x);
/** Returns x·sigmoid(x). */
export const silu = (x: Tensor): Tensor => unaryOp("silu", x);
/** Returns GELU(x) (tanh approximation). */
export const gelu = (x: Tensor): Tensor => unaryOp("gelu", x);
/** Returns max(x, 0). */
export const relu = (x: Tensor): Tensor => unaryOp("relu", x);
/** Returns −x. */
export const neg = (x: Tensor): Tensor => unaryOp("neg", x);
/** Returns |x|. */
export const abs = (x: Tensor): Tensor => unaryOp("abs", x);
/** Returns x². */
export const square = (x: Tensor): Tensor => unaryOp("square", x);
