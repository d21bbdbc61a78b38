/** Broadcasting rules (NumPy semantics) shared by the elementwise ops. */
import type { Shape } from "../tensor.js";
import { stridesOf } from "../tensor.js";

/** Returns the broadcast shape of a and b, or throws naming both shapes. */
export function broadcastShapes(a: Shape, b: Shape, op = "broadcast"): number[] {
  const rank = Math.max(a.length, b.length);
  const out = new Array<number>(rank);
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(`${op}: shapes [${a.join(", ")}] and [${b.join(", ")}] do not broadcast`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/**
 * Returns the element strides of a tensor of shape `from` read over the index space `to`
 * (0 on broadcast dimensions). `from` must broadcast to `to`.
 */
export function broadcastStrides(from: Shape, to: Shape): number[] {
  const own = stridesOf(from);
  const out = new Array<number>(to.length).fill(0);
  const offset = to.length - from.length;
  for (let i = 0; i < from.length; i++) {
    out[offset + i] = from[i] === 1 && to[offset + i] !== 1 ? 0 : own[i]!;
  }
  return out;
}

/** Returns true when two shapes are equal. */
export function sameShape(a: Shape, b: Shape): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Merges adjacent dimensions that are contiguous for every stride list given, so kernels
 * see the lowest rank possible (e.g. a same-shape add becomes one flat loop).
 */
export function coalesce(
  shape: readonly number[],
  ...strideLists: (readonly number[])[]
): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = strideLists.map(() => []);
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i]!;
    if (d === 1) continue;
    const last = outShape.length - 1;
    let merge = last >= 0;
    if (merge) {
      for (let s = 0; s < strideLists.length; s++) {
        const prevStride = outStrides[s]![last]!;
        if (prevStride !== strideLists[s]![i]! * d) {
          merge = false;
          break;
        }
      }
    }
    if (merge) {
      outShape[last] = outShape[last]! * d;
      for (let s = 0; s < strideLists.length; s++) outStrides[s]![last] = strideLists[s]![i]!;
    } else {
      outShape.push(d);
      for (let s = 0; s < strideLists.length; s++) outStrides[s]!.push(strideLists[s]![i]!);
    }
  }
  if (outShape.length === 0) {
    outShape.push(1);
    for (const s of outStrides) s.push(1);
  }
  return { shape: outShape, strides: outStrides };
}
