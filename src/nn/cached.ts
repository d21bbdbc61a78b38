/**
 * The transformer's decoding path: new positions run through a block against that layer's
 * key/value cache. generate/cache.ts owns the caches and decides when their length advances.
 * Inference only: no gradient flows into a cache.
 */
import { backend } from "../tensor/backends/current.js";
import { add } from "../tensor/ops/elementwise.js";
import { attention, rope } from "../tensor/ops/nn.js";
import type { Tensor } from "../tensor/tensor.js";
import type { ModalityRows } from "./modality.js";
import type { Attention, Block } from "./transformer.js";

/** Keys/values of one layer for incremental decoding: [B, capacity, Hkv, D] each. */
export interface LayerCache {
  k: Tensor;
  v: Tensor;
}

/** Where new positions go in a cache and what they may see. */
export interface CacheStep {
  /** Cache column of the first new position. */
  offset: number;
  /** Cache capacity (columns per row). */
  capacity: number;
  /** [B, Tnew, capacity] (1 = may attend), covering cached and new columns. */
  mask: Uint8Array;
  /** RoPE tables for the new positions, [B·Tnew, D/2]. */
  cos: Float32Array;
  sin: Float32Array;
  /** Which of the B·Tnew new rows are image patches; required by modality-specific blocks. */
  modality?: ModalityRows;
}

/** Returns `block` applied to new positions x [B, Tnew, dim] against its layer's cache. */
export function forwardCached(block: Block, x: Tensor, step: CacheStep, cache: LayerCache): Tensor {
  const h = add(x, attendCached(block.attn, block.attnNorm.forward(x), step, cache));
  return add(h, block.feedForward(block.mlpNorm.forward(h), step.modality));
}

/**
 * Returns attention for new positions x [B, Tnew, dim] against a key/value cache: their keys
 * and values are written at `step.offset` (whether the cache length then advances past them is
 * the caller's choice) and the new queries attend over the whole cache under `step.mask`.
 */
function attendCached(attn: Attention, x: Tensor, step: CacheStep, cache: LayerCache): Tensor {
  const [B, T] = x.shape as [number, number];
  const { headDim: D, kvHeads: Hkv } = attn;
  const [q0, k0, v] = attn.project(x, step.modality);
  const q = rope(q0, step.cos, step.sin);
  const k = rope(k0, step.cos, step.sin);
  // Row b's T new positions go to cache columns offset … offset + T − 1 of row b.
  const row = Hkv * D;
  const shape = [B, T * row];
  const into = (src: Tensor, dst: Tensor) =>
    backend().copyStrided(
      src.store,
      0,
      [T * row, 1],
      dst.store,
      step.offset * row,
      [step.capacity * row, 1],
      shape,
      false,
    );
  into(k, cache.k);
  into(v, cache.v);
  const y = attention(q, cache.k, cache.v, { mask: step.mask });
  return attn.output(y, step.modality);
}
