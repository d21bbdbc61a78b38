/** Reductions over axes. */

import { backend } from "../backends/current.js";
import { alloc } from "../pool.js";
import { accumulateGrad, empty, record, stridesOf, Tensor } from "../tensor.js";
import { broadcastStrides, coalesce } from "./broadcast.js";

function reducedShape(shape: readonly number[], axes: readonly number[] | undefined): number[] {
  if (axes === undefined) return shape.map(() => 1);
  const out = [...shape];
  for (const a of axes) {
    const ax = a < 0 ? a + shape.length : a;
    if (ax < 0 || ax >= shape.length) {
      throw new Error(`sum: axis ${a} out of range for shape [${shape.join(", ")}]`);
    }
    out[ax] = 1;
  }
  return out;
}

/**
 * Returns the sum over `axes` (all axes when omitted). Reduced axes are kept as size 1 with
 * `keepDims`, else removed.
 */
export function sum(x: Tensor, axes?: readonly number[], keepDims = false): Tensor {
  const kept = reducedShape(x.shape, axes);
  const outStrides = broadcastStrides(kept, x.shape);
  const out = empty(kept);
  const c = coalesce(x.shape, outStrides, stridesOf(x.shape));
  backend().reduceSum(x.store, c.shape, out.store, c.strides[0]!, out.size);
  const finalShape = keepDims
    ? kept
    : kept.filter((_, i) => {
        if (axes === undefined) return false;
        return !axes.some((a) => (a < 0 ? a + x.rank : a) === i);
      });
  const result = finalShape.length === kept.length ? out : new Tensor(out.data, finalShape);
  return record("sum", result, [x], (g) => {
    // Broadcast the reduced gradient back over x's shape.
    const gx = alloc(x.size, true);
    backend().copyStrided(g, 0, c.strides[0]!, gx, 0, c.strides[1]!, c.shape, false);
    accumulateGrad(x, gx, true);
  });
}

/** Returns the mean over `axes` (all axes when omitted). */
export function mean(x: Tensor, axes?: readonly number[], keepDims = false): Tensor {
  const kept = reducedShape(x.shape, axes);
  const count = x.size / kept.reduce((p, d) => p * d, 1);
  const s = sum(x, axes, keepDims);
  const out = empty(s.shape);
  backend().affine(s.store, out.store, s.size, 1 / count, 0);
  return record("mean", out, [s], (g) => {
    const gs = alloc(g.length, true);
    backend().affine(g, gs, g.length, 1 / count, 0);
    accumulateGrad(s, gs, true);
  });
}
