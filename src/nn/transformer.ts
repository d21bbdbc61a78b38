/**
 * The Llama-style pre-norm transformer block: x = x + attn(norm(x)); x = x + mlp(norm(x)), with
 * RoPE inside attention. Beside it: nn/modality.ts routes rows to modality-specific weights
 * (which the block registers here, so tensor names stay in one place) and nn/cached.ts runs a
 * block against a key/value cache for decoding.
 */
import { add, gelu, mul, silu } from "../tensor/ops/elementwise.js";
import { attention, rope } from "../tensor/ops/nn.js";
import { reshape } from "../tensor/ops/shape.js";
import type { Rng } from "../tensor/rng.js";
import type { Tensor } from "../tensor/tensor.js";
import { LayerNorm, Linear, RMSNorm } from "./layers.js";
import { type ModalityRows, perModality } from "./modality.js";
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

/** Multi-head self-attention with separate q/k/v/o projections and no biases. */
export class Attention extends Module {
  readonly qProj: Linear;
  readonly kProj: Linear;
  readonly vProj: Linear;
  readonly oProj: Linear;
  /** The image rows' projections (modality-specific attention only; all set or none). */
  readonly qProjImage: Linear | undefined;
  readonly kProjImage: Linear | undefined;
  readonly vProjImage: Linear | undefined;
  readonly oProjImage: Linear | undefined;
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
    const outStd = cfg.outStd ?? std;
    this.qProj = this.child("q_proj", new Linear(cfg.dim, cfg.dim, rng, { std }));
    this.kProj = this.child("k_proj", new Linear(cfg.dim, kvDim, rng, { std }));
    this.vProj = this.child("v_proj", new Linear(cfg.dim, kvDim, rng, { std }));
    this.oProj = this.child("o_proj", new Linear(cfg.dim, cfg.dim, rng, { std: outStd }));
    // Registered after the shared projections, so a shared-weight model's names are unchanged.
    const image = cfg.modalitySpecific;
    this.qProjImage = image
      ? this.child("q_proj_image", new Linear(cfg.dim, cfg.dim, rng, { std }))
      : undefined;
    this.kProjImage = image
      ? this.child("k_proj_image", new Linear(cfg.dim, kvDim, rng, { std }))
      : undefined;
    this.vProjImage = image
      ? this.child("v_proj_image", new Linear(cfg.dim, kvDim, rng, { std }))
      : undefined;
    this.oProjImage = image
      ? this.child("o_proj_image", new Linear(cfg.dim, cfg.dim, rng, { std: outStd }))
      : undefined;
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

  /** Returns q [B, T, H, D], k and v [B, T, Hkv, D] for x [B, T, dim], before RoPE. */
  project(x: Tensor, rows: ModalityRows | undefined): [Tensor, Tensor, Tensor] {
    const [B, T] = x.shape as [number, number];
    const { heads: H, kvHeads: Hkv, headDim: D } = this;
    const { qProjImage: qi, kProjImage: ki, vProjImage: vi } = this;
    const [q, k, v] = perModality(
      x,
      rows,
      [this.qProj, this.kProj, this.vProj],
      qi && ki && vi && [qi, ki, vi],
      "Attention",
    );
    return [reshape(q!, [B, T, H, D]), reshape(k!, [B, T, Hkv, D]), reshape(v!, [B, T, Hkv, D])];
  }

  /** Returns the output projection of the attention result y [B, T, H, D] as [B, T, dim]. */
  output(y: Tensor, rows: ModalityRows | undefined): Tensor {
    const [B, T] = y.shape as [number, number];
    const flat = reshape(y, [B, T, this.heads * this.headDim]);
    const oi = this.oProjImage;
    return perModality(flat, rows, [this.oProj], oi && [oi], "Attention")[0]!;
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

  /** Returns the MLP of x [B, T, dim], per modality when the block has an image MLP. */
  feedForward(x: Tensor, rows: ModalityRows | undefined): Tensor {
    return perModality(x, rows, [this.mlp], this.mlpImage && [this.mlpImage], "Block")[0]!;
  }
}
