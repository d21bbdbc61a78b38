/** The Llama-style pre-norm transformer block: RMSNorm → attention with RoPE → RMSNorm → MLP. */
import { add, gelu, mul, silu } from "../tensor/ops/elementwise.js";
import { attention, rope } from "../tensor/ops/nn.js";
import { reshape } from "../tensor/ops/shape.js";
import type { Rng } from "../tensor/rng.js";
import { Tensor } from "../tensor/tensor.js";
import { LayerNorm, Linear, RMSNorm } from "./layers.js";
import { Module } from "./module.js";

/** What attention needs besides x: RoPE tables and the mask. */
export interface AttentionContext {
  /** RoPE tables [B·T, D/2] or [T, D/2]; omit both for no rotary embedding. */
  cos?: Float32Array;
  sin?: Float32Array;
  /** [B, T, T] boolean mask (1 = may attend); overrides `causal`. */
  mask?: Uint8Array | null;
  causal?: boolean;
}

/** Keys/values of one layer for incremental decoding: [B, capacity, Hkv, D] each. */
export interface LayerCache {
  k: Float32Array;
  v: Float32Array;
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
}

export interface AttentionConfig {
  dim: number;
  heads: number;
  /** Key/value heads (grouped-query attention); defaults to `heads`. */
  kvHeads?: number;
  /** Init std of the projections. */
  std?: number;
  /** Init std of the output projection (often scaled down with depth). */
  outStd?: number;
}

/** Multi-head self-attention with separate q/k/v/o projections and no biases. */
export class Attention extends Module {
  readonly q: Linear;
  readonly k: Linear;
  readonly v: Linear;
  readonly o: Linear;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;

  constructor(cfg: AttentionConfig, rng: Rng) {
    super();
    if (cfg.dim % cfg.heads !== 0) throw new Error(`Attention: dim ${cfg.dim} not divisible by ${cfg.heads} heads`);
    this.heads = cfg.heads;
    this.kvHeads = cfg.kvHeads ?? cfg.heads;
    this.headDim = cfg.dim / cfg.heads;
    const std = cfg.std ?? 0.02;
    const kvDim = this.kvHeads * this.headDim;
    this.q = this.child("q_proj", new Linear(cfg.dim, cfg.dim, rng, { std }));
    this.k = this.child("k_proj", new Linear(cfg.dim, kvDim, rng, { std }));
    this.v = this.child("v_proj", new Linear(cfg.dim, kvDim, rng, { std }));
    this.o = this.child("o_proj", new Linear(cfg.dim, cfg.dim, rng, { std: cfg.outStd ?? std }));
  }

  /** Returns attention over x [B, T, dim]; the head split is a view, never a transpose. */
  forward(x: Tensor, ctx: AttentionContext): Tensor {
    const [B, T] = x.shape as [number, number];
    let q = reshape(this.q.forward(x), [B, T, this.heads, this.headDim]);
    let k = reshape(this.k.forward(x), [B, T, this.kvHeads, this.headDim]);
    const v = reshape(this.v.forward(x), [B, T, this.kvHeads, this.headDim]);
    if (ctx.cos && ctx.sin) {
      q = rope(q, ctx.cos, ctx.sin);
      k = rope(k, ctx.cos, ctx.sin);
    }
    const y = attention(q, k, v, { mask: ctx.mask ?? null, causal: ctx.causal ?? false });
    return this.o.forward(reshape(y, [B, T, this.heads * this.headDim]));
  }

  /**
   * Returns attention for new positions x [B, Tnew, dim] against a key/value cache: their keys
   * and values are written at `step.offset` (the caller decides whether the cache length then
   * advances past them) and the new queries attend over the whole cache under `step.mask`.
   * For inference only (no gradient flows into the cache).
   */
  forwardCached(x: Tensor, step: CacheStep, cache: LayerCache): Tensor {
    const [B, T] = x.shape as [number, number];
    const { headDim: D, kvHeads: Hkv } = this;
    const q = rope(reshape(this.q.forward(x), [B, T, this.heads, D]), step.cos, step.sin);
    const k = rope(reshape(this.k.forward(x), [B, T, Hkv, D]), step.cos, step.sin);
    const v = reshape(this.v.forward(x), [B, T, Hkv, D]);
    const row = Hkv * D;
    for (let b = 0; b < B; b++) {
      const dst = (b * step.capacity + step.offset) * row;
      cache.k.set(k.f32.subarray(b * T * row, (b + 1) * T * row), dst);
      cache.v.set(v.f32.subarray(b * T * row, (b + 1) * T * row), dst);
    }
    const K = new Tensor(cache.k, [B, step.capacity, Hkv, D]);
    const V = new Tensor(cache.v, [B, step.capacity, Hkv, D]);
    const y = attention(q, K, V, { mask: step.mask });
    return this.o.forward(reshape(y, [B, T, this.heads * D]));
  }
}

export type MlpKind = "swiglu" | "gelu";

/** Feed-forward: SwiGLU (w2·(silu(w1·x) ⊙ w3·x)) or GELU (w2·gelu(w1·x)); no biases. */
export class Mlp extends Module {
  readonly w1: Linear;
  readonly w2: Linear;
  readonly w3: Linear | undefined;
  constructor(
    dim: number,
    hidden: number,
    readonly kind: MlpKind,
    rng: Rng,
    std = 0.02,
    outStd = std,
  ) {
    super();
    this.w1 = this.child("w1", new Linear(dim, hidden, rng, { std }));
    this.w3 = kind === "swiglu" ? this.child("w3", new Linear(dim, hidden, rng, { std })) : undefined;
    this.w2 = this.child("w2", new Linear(hidden, dim, rng, { std: outStd }));
  }
  /** Returns the MLP applied to x [..., dim]. */
  forward(x: Tensor): Tensor {
    if (this.w3) return this.w2.forward(mul(silu(this.w1.forward(x)), this.w3.forward(x)));
    return this.w2.forward(gelu(this.w1.forward(x)));
  }
}

/** Returns the SwiGLU hidden size ≈ 8/3·dim rounded up to a multiple of `multiple`. */
export function swigluHidden(dim: number, multiple = 32): number {
  return Math.ceil((8 * dim) / 3 / multiple) * multiple;
}

export interface BlockConfig extends AttentionConfig {
  mlpHidden: number;
  mlp: MlpKind;
  norm: "rms" | "layer";
  layers: number;
}

/** One pre-norm residual block. */
export class Block extends Module {
  readonly attnNorm: RMSNorm | LayerNorm;
  readonly attn: Attention;
  readonly mlpNorm: RMSNorm | LayerNorm;
  readonly mlp: Mlp;
  constructor(cfg: BlockConfig, rng: Rng) {
    super();
    const std = cfg.std ?? 0.02;
    // GPT-2 style: residual output projections scaled by 1/√(2·layers) keep the stream's variance flat.
    const outStd = std / Math.sqrt(2 * cfg.layers);
    const mkNorm = () => (cfg.norm === "rms" ? new RMSNorm(cfg.dim) : new LayerNorm(cfg.dim));
    this.attnNorm = this.child("attn_norm", mkNorm());
    this.attn = this.child("attn", new Attention({ ...cfg, std, outStd }, rng));
    this.mlpNorm = this.child("mlp_norm", mkNorm());
    this.mlp = this.child("mlp", new Mlp(cfg.dim, cfg.mlpHidden, cfg.mlp, rng, std, outStd));
  }
  /** Returns x after attention and MLP residual updates. */
  forward(x: Tensor, ctx: AttentionContext): Tensor {
    const h = add(x, this.attn.forward(this.attnNorm.forward(x), ctx));
    return add(h, this.mlp.forward(this.mlpNorm.forward(h)));
  }

  /** Returns the block applied to new positions against a key/value cache (inference). */
  forwardCached(x: Tensor, step: CacheStep, cache: LayerCache): Tensor {
    const h = add(x, this.attn.forwardCached(this.attnNorm.forward(x), step, cache));
    return add(h, this.mlp.forward(this.mlpNorm.forward(h)));
  }
}
