/**
 * The Llama-style pre-norm transformer block: RMSNorm → attention with RoPE → RMSNorm → MLP.
 * Optionally modality-specific (Mixture-of-Transformers, Liang et al. 2024): image rows go
 * through their own q/k/v/o projections and MLP, text rows through the shared ones, while
 * attention itself runs over the whole mixed sequence.
 */
import { add, gelu, mul, silu } from "../tensor/ops/elementwise.js";
import { attention, rope } from "../tensor/ops/nn.js";
import { gather, indexAdd, reshape } from "../tensor/ops/shape.js";
import type { Rng } from "../tensor/rng.js";
import { Tensor, zeros } from "../tensor/tensor.js";
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
  /** Which of the B·T rows are image patches; required by modality-specific blocks. */
  modality?: ModalityRows;
}

/** The flattened rows [B·T] of a sequence split by modality (ascending, together all rows). */
export interface ModalityRows {
  text: Int32Array;
  image: Int32Array;
}

/** Returns the split of `count` rows into the listed image rows and the remaining text rows. */
export function modalityRows(count: number, imageRows: Int32Array): ModalityRows {
  const isImage = new Uint8Array(count);
  for (const r of imageRows) {
    if (!(r >= 0 && r < count))
      throw new Error(`modalityRows: image row ${r} is outside [0, ${count})`);
    isImage[r] = 1;
  }
  const text = new Int32Array(count - isImage.reduce((s, v) => s + v, 0));
  const image = new Int32Array(count - text.length);
  let ti = 0;
  let ii = 0;
  for (let r = 0; r < count; r++) {
    if (isImage[r]) image[ii++] = r;
    else text[ti++] = r;
  }
  return { text, image };
}

/**
 * Returns the outputs of `onText` on the text rows of x [N, d] and of `onImage` on its image
 * rows, each output put back at its rows as [N, out]. Each modality's weights see only that
 * modality's rows (gather, apply, scatter), so the cost equals one shared layer's.
 */
export function byModality(
  x: Tensor,
  rows: ModalityRows,
  onText: (x: Tensor) => Tensor[],
  onImage: (x: Tensor) => Tensor[],
): Tensor[] {
  const N = x.shape[0]!;
  if (rows.text.length + rows.image.length !== N) {
    throw new Error(
      `byModality: ${rows.text.length} text + ${rows.image.length} image rows for ${N} rows`,
    );
  }
  if (rows.image.length === 0) return onText(x);
  if (rows.text.length === 0) return onImage(x);
  const fromText = onText(gather(x, rows.text));
  const fromImage = onImage(gather(x, rows.image));
  return fromText.map((t, i) => {
    const out = zeros([N, t.shape[1]!]);
    return indexAdd(indexAdd(out, rows.text, t), rows.image, fromImage[i]!);
  });
}

function needRows(rows: ModalityRows | undefined, where: string): ModalityRows {
  if (!rows)
    throw new Error(`${where}: modality-specific weights need the rows' modalities (modality)`);
  return rows;
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
  /** Which of the B·Tnew new rows are image patches; required by modality-specific blocks. */
  modality?: ModalityRows;
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
  /** Give image rows their own projections (registered as `q_proj_image` etc.). */
  modalitySpecific?: boolean;
}

interface Projections {
  q: Linear;
  k: Linear;
  v: Linear;
  o: Linear;
}

/** Multi-head self-attention with separate q/k/v/o projections and no biases. */
export class Attention extends Module {
  readonly q: Linear;
  readonly k: Linear;
  readonly v: Linear;
  readonly o: Linear;
  /** The image rows' projections (modality-specific attention only). */
  readonly image: Projections | undefined;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;

  constructor(cfg: AttentionConfig, rng: Rng) {
    super();
    if (cfg.dim % cfg.heads !== 0)
      throw new Error(`Attention: dim ${cfg.dim} not divisible by ${cfg.heads} heads`);
    this.heads = cfg.heads;
    this.kvHeads = cfg.kvHeads ?? cfg.heads;
    this.headDim = cfg.dim / cfg.heads;
    const std = cfg.std ?? 0.02;
    const kvDim = this.kvHeads * this.headDim;
    this.q = this.child("q_proj", new Linear(cfg.dim, cfg.dim, rng, { std }));
    this.k = this.child("k_proj", new Linear(cfg.dim, kvDim, rng, { std }));
    this.v = this.child("v_proj", new Linear(cfg.dim, kvDim, rng, { std }));
    this.o = this.child("o_proj", new Linear(cfg.dim, cfg.dim, rng, { std: cfg.outStd ?? std }));
    // Registered after the shared projections, so a shared-weight model's names are unchanged.
    this.image = cfg.modalitySpecific
      ? {
          q: this.child("q_proj_image", new Linear(cfg.dim, cfg.dim, rng, { std })),
          k: this.child("k_proj_image", new Linear(cfg.dim, kvDim, rng, { std })),
          v: this.child("v_proj_image", new Linear(cfg.dim, kvDim, rng, { std })),
          o: this.child(
            "o_proj_image",
            new Linear(cfg.dim, cfg.dim, rng, { std: cfg.outStd ?? std }),
          ),
        }
      : undefined;
  }

  /** Returns q [B, T, H, D], k and v [B, T, Hkv, D] for x [B, T, dim], before RoPE. */
  private project(x: Tensor, rows: ModalityRows | undefined): [Tensor, Tensor, Tensor] {
    const [B, T, dim] = x.shape as [number, number, number];
    const { heads: H, kvHeads: Hkv, headDim: D } = this;
    let qkv: Tensor[];
    const image = this.image;
    if (!image) qkv = [this.q, this.k, this.v].map((l) => l.forward(x));
    else {
      qkv = byModality(
        reshape(x, [B * T, dim]),
        needRows(rows, "Attention"),
        (h) => [this.q.forward(h), this.k.forward(h), this.v.forward(h)],
        (h) => [image.q.forward(h), image.k.forward(h), image.v.forward(h)],
      );
    }
    return [
      reshape(qkv[0]!, [B, T, H, D]),
      reshape(qkv[1]!, [B, T, Hkv, D]),
      reshape(qkv[2]!, [B, T, Hkv, D]),
    ];
  }

  /** Returns the output projection of the attention result y [B, T, H, D] as [B, T, dim]. */
  private output(y: Tensor, rows: ModalityRows | undefined): Tensor {
    const [B, T] = y.shape as [number, number];
    const width = this.heads * this.headDim;
    const image = this.image;
    if (!image) return this.o.forward(reshape(y, [B, T, width]));
    const [out] = byModality(
      reshape(y, [B * T, width]),
      needRows(rows, "Attention"),
      (h) => [this.o.forward(h)],
      (h) => [image.o.forward(h)],
    );
    return reshape(out!, [B, T, out!.shape[1]!]);
  }

  /** Returns attention over x [B, T, dim]; the head split is a view, never a transpose. */
  forward(x: Tensor, ctx: AttentionContext): Tensor {
    let [q, k, v] = this.project(x, ctx.modality);
    if (ctx.cos && ctx.sin) {
      q = rope(q, ctx.cos, ctx.sin);
      k = rope(k, ctx.cos, ctx.sin);
    }
    const y = attention(q, k, v, { mask: ctx.mask ?? null, causal: ctx.causal ?? false });
    return this.output(y, ctx.modality);
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
    const [q0, k0, v] = this.project(x, step.modality);
    const q = rope(q0, step.cos, step.sin);
    const k = rope(k0, step.cos, step.sin);
    const row = Hkv * D;
    for (let b = 0; b < B; b++) {
      const dst = (b * step.capacity + step.offset) * row;
      cache.k.set(k.f32.subarray(b * T * row, (b + 1) * T * row), dst);
      cache.v.set(v.f32.subarray(b * T * row, (b + 1) * T * row), dst);
    }
    const K = new Tensor(cache.k, [B, step.capacity, Hkv, D]);
    const V = new Tensor(cache.v, [B, step.capacity, Hkv, D]);
    const y = attention(q, K, V, { mask: step.mask });
    return this.output(y, step.modality);
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
    this.w3 =
      kind === "swiglu" ? this.child("w3", new Linear(dim, hidden, rng, { std })) : undefined;
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
  /** The image rows' MLP (modality-specific blocks only). */
  readonly mlpImage: Mlp | undefined;
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
    this.mlpImage = cfg.modalitySpecific
      ? this.child("mlp_image", new Mlp(cfg.dim, cfg.mlpHidden, cfg.mlp, rng, std, outStd))
      : undefined;
  }
  /** Returns x after attention and MLP residual updates. */
  forward(x: Tensor, ctx: AttentionContext): Tensor {
    const h = add(x, this.attn.forward(this.attnNorm.forward(x), ctx));
    return add(h, this.feedForward(this.mlpNorm.forward(h), ctx.modality));
  }

  /** Returns the block applied to new positions against a key/value cache (inference). */
  forwardCached(x: Tensor, step: CacheStep, cache: LayerCache): Tensor {
    const h = add(x, this.attn.forwardCached(this.attnNorm.forward(x), step, cache));
    return add(h, this.feedForward(this.mlpNorm.forward(h), step.modality));
  }

  /** Returns the MLP of x [B, T, dim], per modality when the block has an image MLP. */
  private feedForward(x: Tensor, rows: ModalityRows | undefined): Tensor {
    const image = this.mlpImage;
    if (!image) return this.mlp.forward(x);
    const [B, T, dim] = x.shape as [number, number, number];
    const [y] = byModality(
      reshape(x, [B * T, dim]),
      needRows(rows, "Block"),
      (h) => [this.mlp.forward(h)],
      (h) => [image.forward(h)],
    );
    return reshape(y!, [B, T, dim]);
  }
}
