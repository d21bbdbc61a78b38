/** Layout ops: reshape, permute, slice, concat, expand, and row gathers (embeddings). */

import { backend } from "../backends/current.js";
import { alloc } from "../pool.js";
import {
  accumulateGrad,
  copyOf,
  empty,
  record,
  type Shape,
  sizeOf,
  stridesOf,
  Tensor,
} from "../tensor.js";
import { broadcastShapes, broadcastStrides, coalesce } from "./broadcast.js";
import { reduceTo } from "./elementwise.js";

function normAxis(axis: number, rank: number, op: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`${op}: axis ${axis} out of range for rank ${rank}`);
  return a;
}

/** Returns a view of x with a new shape (one dimension may be −1). Shares the data. */
export function reshape(x: Tensor, shape: Shape): Tensor {
  const dims = [...shape];
  const unknown = dims.indexOf(-1);
  if (unknown >= 0) {
    const known = dims.reduce((p, d, i) => (i === unknown ? p : p * d), 1);
    if (known === 0 || x.size % known !== 0) {
      throw new Error(`reshape: cannot infer -1 in [${shape.join(", ")}] for ${x.size} elements`);
    }
    dims[unknown] = x.size / known;
  }
  if (sizeOf(dims) !== x.size) {
    throw new Error(
      `reshape: [${x.shape.join(", ")}] (${x.size} elements) cannot become [${shape.join(", ")}]`,
    );
  }
  const out = new Tensor(x.data, dims);
  // The output gradient is dead after this rule runs, so x may keep the buffer.
  return record("reshape", out, [x], (g) => accumulateGrad(x, g, true));
}

/** Returns x with its axes reordered: out.shape[i] = x.shape[perm[i]]. */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  if (perm.length !== x.rank || new Set(perm).size !== perm.length) {
    throw new Error(`permute: [${perm.join(", ")}] is not a permutation of ${x.rank} axes`);
  }
  const inStrides = stridesOf(x.shape);
  const shape = perm.map((p) => x.shape[normAxis(p, x.rank, "permute")]!);
  const srcStrides = perm.map((p) => inStrides[p]!);
  const out = empty(shape);
  const c = coalesce(shape, srcStrides, stridesOf(shape));
  backend().copyStrided(x.store, 0, c.strides[0]!, out.store, 0, c.strides[1]!, c.shape, false);
  return record("permute", out, [x], (g) => {
    const gx = alloc(x.size, true);
    backend().copyStrided(g, 0, c.strides[1]!, gx, 0, c.strides[0]!, c.shape, false);
    accumulateGrad(x, gx, true);
  });
}

/** Returns x with two axes swapped. */
export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  const perm = x.shape.map((_, i) => i);
  const ia = normAxis(a, x.rank, "transpose");
  const ib = normAxis(b, x.rank, "transpose");
  perm[ia] = ib;
  perm[ib] = ia;
  return permute(x, perm);
}

/** Returns the elements [start, end) of x along `axis` (a copy). */
export function slice(x: Tensor, axis: number, start: number, end: number): Tensor {
  const ax = normAxis(axis, x.rank, "slice");
  const n = x.shape[ax]!;
  if (
    !(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end && end <= n)
  ) {
    throw new Error(`slice: range [${start}, ${end}) invalid for axis ${axis} of size ${n}`);
  }
  const shape = [...x.shape];
  shape[ax] = end - start;
  const inStrides = stridesOf(x.shape);
  const out = empty(shape);
  const c = coalesce(shape, inStrides, stridesOf(shape));
  const off = start * inStrides[ax]!;
  backend().copyStrided(x.store, off, c.strides[0]!, out.store, 0, c.strides[1]!, c.shape, false);
  return record("slice", out, [x], (g) => {
    const gx = alloc(x.size);
    backend().copyStrided(g, 0, c.strides[1]!, gx, off, c.strides[0]!, c.shape, false);
    accumulateGrad(x, gx, true);
  });
}

/** Returns the tensors joined along `axis`; all other dimensions must match. */
export function concat(xs: readonly Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new Error("concat: no tensors");
  const first = xs[0]!;
  const ax = normAxis(axis, first.rank, "concat");
  let total = 0;
  xs.forEach((t, i) => {
    if (t.rank !== first.rank || t.shape.some((d, j) => j !== ax && d !== first.shape[j])) {
      throw new Error(
        `concat: tensor ${i} has shape [${t.shape.join(", ")}], incompatible with [${first.shape.join(", ")}] on axis ${ax}`,
      );
    }
    total += t.shape[ax]!;
  });
  const shape = [...first.shape];
  shape[ax] = total;
  const out = empty(shape);
  const outStrides = stridesOf(shape);
  const parts: Array<{ off: number; c: ReturnType<typeof coalesce> }> = [];
  let pos = 0;
  for (const t of xs) {
    const c = coalesce(t.shape, stridesOf(t.shape), outStrides);
    const off = pos * outStrides[ax]!;
    backend().copyStrided(t.store, 0, c.strides[0]!, out.store, off, c.strides[1]!, c.shape, false);
    parts.push({ off, c });
    pos += t.shape[ax]!;
  }
  return record("concat", out, [...xs], (g) => {
    xs.forEach((t, i) => {
      if (!t.requiresGrad) return;
      const { off, c } = parts[i]!;
      const gt = alloc(t.size, true);
      backend().copyStrided(g, off, c.strides[1]!, gt, 0, c.strides[0]!, c.shape, false);
      accumulateGrad(t, gt, true);
    });
  });
}

/** Returns tensors of equal shape stacked along a new axis. */
export function stack(xs: readonly Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new Error("stack: no tensors");
  const rank = xs[0]!.rank + 1;
  const ax = axis < 0 ? axis + rank : axis;
  return concat(
    xs.map((t) => {
      const s = [...t.shape];
      s.splice(ax, 0, 1);
      return reshape(t, s);
    }),
    ax,
  );
}

/** Returns x broadcast to `shape` (materialised). */
export function expand(x: Tensor, shape: Shape): Tensor {
  const target = broadcastShapes(x.shape, shape, "expand");
  const out = empty(target);
  const c = coalesce(target, broadcastStrides(x.shape, target), stridesOf(target));
  backend().copyStrided(x.store, 0, c.strides[0]!, out.store, 0, c.strides[1]!, c.shape, false);
  return record("expand", out, [x], (g) => accumulateGrad(x, reduceTo(g, target, x.shape), true));
}

/**
 * Returns rows of `table` [V, dim] picked by integer ids (any shape): the result has shape
 * [...ids.shape, dim]. The embedding lookup. Ids are checked against V.
 */
export function gather(table: Tensor, ids: Tensor | Int32Array): Tensor {
  if (table.rank !== 2)
    throw new Error(`gather: table must be [V, dim], got [${table.shape.join(", ")}]`);
  const idx = ids instanceof Tensor ? ids.i32 : ids;
  const idShape = ids instanceof Tensor ? ids.shape : [ids.length];
  const [V, dim] = table.shape as [number, number];
  for (let i = 0; i < idx.length; i++) {
    const id = idx[i]!;
    if (!(id >= 0 && id < V))
      throw new Error(`gather: id ${id} at index ${i} is outside [0, ${V})`);
  }
  const out = empty([...idShape, dim]);
  backend().gatherRows(table.store, idx, out.store, idx.length, dim);
  return record("gather", out, [table], (g) => {
    const gt = alloc(table.size);
    backend().scatterAddRows(g, idx, gt, idx.length, dim);
    accumulateGrad(table, gt, true);
  });
}

/**
 * Returns `base` [N, dim] with rows `idx[r]` increased by `src[r]` (scatter-add; repeated
 * indices add up). Differentiable in both base and src.
 */
export function indexAdd(base: Tensor, idx: Int32Array, src: Tensor): Tensor {
  if (base.rank !== 2) throw new Error("indexAdd: base must be rank 2");
  const [N, dim] = base.shape as [number, number];
  if (src.size !== idx.length * dim) {
    throw new Error(`indexAdd: src has ${src.size} elements, expected ${idx.length}×${dim}`);
  }
  for (let i = 0; i < idx.length; i++) {
    const r = idx[i]!;
    if (!(r >= 0 && r < N)) throw new Error(`indexAdd: index ${r} at ${i} is outside [0, ${N})`);
  }
  const out = new Tensor(copyOf(base.store), base.shape);
  backend().scatterAddRows(src.store, idx, out.store, idx.length, dim);
  return record("indexAdd", out, [base, src], (g) => {
    if (base.requiresGrad) accumulateGrad(base, g, false);
    if (src.requiresGrad) {
      const gs = alloc(src.size, true);
      backend().gatherRows(g, idx, gs, idx.length, dim);
      accumulateGrad(src, gs, true);
    }
  });
}
