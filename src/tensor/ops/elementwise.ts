/** Elementwise ops with broadcasting, and their gradients. */

import type { BinaryOp, UnaryOp } from "../backends/backend.js";
import { backend } from "../backends/current.js";
import { alloc } from "../pool.js";
import type { FloatStore } from "../storage.js";
import { accumulateGrad, empty, record, type Shape, stridesOf, Tensor } from "../tensor.js";
import { broadcastShapes, broadcastStrides, coalesce, sameShape } from "./broadcast.js";

/**
 * Returns the sum of `g` (laid out as `from`) reduced to `to`: `g` itself when the shapes are
 * equal (the caller decides whether it may be kept), else a fresh buffer.
 */
export function reduceTo(g: FloatStore, from: Shape, to: Shape): FloatStore {
  if (sameShape(from, to)) return g;
  const outStrides = broadcastStrides(to, from);
  let outSize = 1;
  for (const d of to) outSize *= d;
  const out = alloc(outSize, true);
  const c = coalesce(from, outStrides, stridesOf(from));
  backend().reduceSum(g, c.shape, out, c.strides[0]!, outSize);
  return out;
}

function binaryForward(op: BinaryOp, a: Tensor, b: Tensor, shape: number[]): Tensor {
  const out = empty(shape);
  if (sameShape(a.shape, shape) && sameShape(b.shape, shape)) {
    backend().binary(op, a.store, [1], b.store, [1], out.store, [out.size]);
  } else {
    const c = coalesce(shape, broadcastStrides(a.shape, shape), broadcastStrides(b.shape, shape));
    backend().binary(op, a.store, c.strides[0]!, b.store, c.strides[1]!, out.store, c.shape);
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
    const send = (x: Tensor, buf: FloatStore) => {
      const r = reduceTo(buf, gShape, x.shape);
      const own = r !== g || !gTaken;
      if (r === g) gTaken = true;
      accumulateGrad(x, r, own);
    };
    const sendA = (buf: FloatStore) => send(a, buf);
    const sendB = (buf: FloatStore) => send(b, buf);
    switch (op) {
      case "add":
        if (a.requiresGrad) sendA(g);
        if (b.requiresGrad) sendB(g);
        return;
      case "sub":
        if (a.requiresGrad) sendA(g);
        if (b.requiresGrad) {
          const ng = alloc(g.length, true);
          be.affine(g, ng, g.length, -1, 0);
          sendB(ng);
        }
        return;
      case "mul": {
        const gt = new Tensor(g, gShape);
        if (a.requiresGrad) sendA(binaryForward("mul", gt, b, gShape).store);
        if (b.requiresGrad) sendB(binaryForward("mul", gt, a, gShape).store);
        return;
      }
      case "div": {
        const gt = new Tensor(g, gShape);
        const ga = binaryForward("div", gt, b, gShape);
        if (a.requiresGrad) sendA(ga.store);
        if (b.requiresGrad) {
          // d(a/b)/db = −a/b²; computed as −(g/b)/b·a so a = 0 gives an exact 0.
          const t = binaryForward("mul", binaryForward("div", ga, b, gShape), a, gShape).store;
          be.affine(t, t, t.length, -1, 0);
          sendB(t);
        }
        return;
      }
      case "max":
      case "min": {
        // The gradient goes to whichever operand was selected, a on ties: b gets g where
        // b − a > 0 (max) or a − b > 0 (min), which is relu's backward of that difference,
        // and a gets the rest, g − gb (exact: each element is g − g or g − 0).
        const n = g.length;
        const aFull = new Tensor(expandTo(a, gShape), gShape);
        const bFull = new Tensor(expandTo(b, gShape), gShape);
        const diff =
          op === "max"
            ? binaryForward("sub", bFull, aFull, gShape)
            : binaryForward("sub", aFull, bFull, gShape);
        const gb = alloc(n, true);
        be.unaryBackward("relu", diff.store, diff.store, g, gb, n);
        if (a.requiresGrad) {
          const ga = alloc(n, true);
          be.binary("sub", g, [1], gb, [1], ga, [n]);
          sendA(ga);
        }
        if (b.requiresGrad) sendB(gb);
        return;
      }
    }
  });
}

/** Returns x's values broadcast to `shape`, as a fresh buffer. */
export function expandTo(x: Tensor, shape: Shape): FloatStore {
  let n = 1;
  for (const d of shape) n *= d;
  const out = alloc(n, true);
  const c = coalesce(shape, broadcastStrides(x.shape, shape), stridesOf(shape));
  backend().copyStrided(x.store, 0, c.strides[0]!, out, 0, c.strides[1]!, c.shape, false);
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
  const out = empty(x.shape);
  backend().affine(x.store, out.store, x.size, alpha, beta);
  return record("affine", out, [x], (g) => {
    const gx = alloc(g.length, true);
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
  const out = empty(x.shape);
  backend().pow(x.store, out.store, x.size, p);
  return record("pow", out, [x], (g) => {
    // gx = g · p·x^(p−1), multiplied in that order.
    const be = backend();
    const n = g.length;
    const d = alloc(n, true);
    be.pow(x.store, d, n, p - 1);
    const gp = alloc(n, true);
    be.affine(g, gp, n, p, 0);
    const gx = alloc(n, true);
    be.binary("mul", gp, [1], d, [1], gx, [n]);
    accumulateGrad(x, gx, true);
  });
}

function unaryOp(op: UnaryOp, x: Tensor): Tensor {
  const out = empty(x.shape);
  backend().unary(op, x.store, out.store, x.size);
  return record(op, out, [x], (g) => {
    const gx = alloc(g.length, true);
    backend().unaryBackward(op, x.store, out.store, g, gx, x.size);
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
