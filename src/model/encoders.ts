/**
 * Patch encoders/decoders between noisy latents and the transformer width (docs/RECIPE.md §3):
 * linear (one linear layer each way, the timestep embedding added to every patch embedding in
 * model width — or, for checkpoints made before that option, to the patch vector) and
 * U-Net (down blocks to a k-downsampled grid of d-vectors, up blocks back, skip connections
 * between them; the timestep enters the down blocks' residual blocks).
 */
import { Conv2d, GroupNorm, groupsFor, Linear } from "../nn/layers.js";
import { Module } from "../nn/module.js";
import { ResBlock } from "../nn/resblock.js";
import { upsampleNearest } from "../tensor/ops/conv.js";
import { add, silu } from "../tensor/ops/elementwise.js";
import { concat, permute, reshape } from "../tensor/ops/shape.js";
import type { Rng } from "../tensor/rng.js";
import type { Tensor } from "../tensor/tensor.js";
import { patchDim, type TransfusionConfig } from "./config.js";
import { patchify, timestepFeatures, unpatchify } from "./patch.js";

/** Width of the sinusoidal timestep features fed to the timestep MLPs. */
const T_FEATURES = 128;

/** Patch embeddings plus whatever the decoder needs from the encoder (U-Net skips). */
export interface EncodedPatches {
  /** [N·n, dim] in raster order per image. */
  tokens: Tensor;
  skips: Tensor[];
}

export interface PatchCodec extends Module {
  /** Returns patch embeddings of noisy latents [N, C, H, W] at timesteps t. */
  encode(xt: Tensor, t: ArrayLike<number>): EncodedPatches;
  /** Returns the prediction [N, C, H, W] from hidden states [N·n, dim] at the patch positions. */
  decode(h: Tensor, N: number, skips: Tensor[]): Tensor;
}

/** Timestep features → Linear → SiLU → Linear. */
class TimestepMlp extends Module {
  readonly l1: Linear;
  readonly l2: Linear;
  constructor(out: number, rng: Rng) {
    super();
    this.l1 = this.child("l1", new Linear(T_FEATURES, out, rng, { bias: true }));
    this.l2 = this.child("l2", new Linear(out, out, rng, { bias: true }));
  }
  forward(t: ArrayLike<number>): Tensor {
    return this.l2.forward(silu(this.l1.forward(timestepFeatures(t, T_FEATURES))));
  }
}

export class LinearPatchCodec extends Module implements PatchCodec {
  readonly tEmbed: TimestepMlp;
  readonly proj: Linear;
  readonly out: Linear;
  private readonly P: number;
  constructor(
    readonly cfg: TransfusionConfig,
    rng: Rng,
  ) {
    super();
    this.P = patchDim(cfg);
    const tWidth = cfg.timestepEmbedding === "width" ? cfg.dim : this.P;
    this.tEmbed = this.child("t_embed", new TimestepMlp(tWidth, rng));
    this.proj = this.child("proj", new Linear(this.P, cfg.dim, rng, { bias: true }));
    this.out = this.child("out", new Linear(cfg.dim, this.P, rng, { bias: true, std: 0.02 }));
  }
  encode(xt: Tensor, t: ArrayLike<number>): EncodedPatches {
    const N = xt.shape[0]!;
    const patches = reshape(patchify(xt, this.cfg.patchSize), [N, -1, this.P]);
    if (this.cfg.timestepEmbedding === "width") {
      // t joins after the projection, in model width, where it cannot be confused with the
      // latent values themselves (C·k² is only 4 numbers at patch 1).
      const te = reshape(this.tEmbed.forward(t), [N, 1, this.cfg.dim]);
      const h = reshape(this.proj.forward(reshape(patches, [-1, this.P])), [N, -1, this.cfg.dim]);
      return { tokens: reshape(add(h, te), [-1, this.cfg.dim]), skips: [] };
    }
    const te = reshape(this.tEmbed.forward(t), [N, 1, this.P]);
    return { tokens: this.proj.forward(reshape(add(patches, te), [-1, this.P])), skips: [] };
  }
  decode(h: Tensor, N: number, _skips: Tensor[]): Tensor {
    const { latentChannels: C, latentSize: S, patchSize: k } = this.cfg;
    return unpatchify(this.out.forward(h), N, C, S, S, k);
  }
}

export class UNetPatchCodec extends Module implements PatchCodec {
  readonly tEmbed: TimestepMlp;
  readonly convIn: Conv2d;
  /** down[l] holds the tensors named `down.l.*`, one per level from full resolution down. */
  readonly down: Array<{ res: ResBlock; downsample: Conv2d }> = [];
  readonly midDown: ResBlock;
  readonly toDim: Conv2d;
  readonly fromDim: Conv2d;
  readonly midUp: ResBlock;
  /** up[l] holds the tensors named `up.l.*`: level l + 1 → l (run from the bottom up). */
  readonly up: Array<{ conv: Conv2d; res: ResBlock }> = [];
  readonly outNorm: GroupNorm;
  readonly convOut: Conv2d;
  readonly levels: number;
  readonly widths: number[];
  constructor(
    readonly cfg: TransfusionConfig,
    rng: Rng,
  ) {
    super();
    const w = cfg.unetWidth;
    this.levels = Math.round(Math.log2(cfg.patchSize));
    this.widths = Array.from({ length: this.levels + 1 }, (_, l) => w * Math.min(2 ** l, 4));
    const tDim = 4 * w;
    this.tEmbed = this.child("t_embed", new TimestepMlp(tDim, rng));
    this.convIn = this.child("conv_in", new Conv2d(cfg.latentChannels, this.widths[0]!, 3, rng));
    for (let l = 0; l < this.levels; l++) {
      const wl = this.widths[l]!;
      const res = this.child(`down.${l}.res`, new ResBlock(wl, wl, rng, { tDim }));
      const downsample = this.child(
        `down.${l}.downsample`,
        new Conv2d(wl, this.widths[l + 1]!, 3, rng, 2, 1),
      );
      this.down.push({ res, downsample });
    }
    const wL = this.widths[this.levels]!;
    this.midDown = this.child("mid_down", new ResBlock(wL, wL, rng, { tDim }));
    this.toDim = this.child("to_dim", new Conv2d(wL, cfg.dim, 1, rng));
    this.fromDim = this.child("from_dim", new Conv2d(cfg.dim, wL, 1, rng));
    this.midUp = this.child("mid_up", new ResBlock(wL, wL, rng));
    for (let l = this.levels - 1; l >= 0; l--) {
      const wl = this.widths[l]!;
      const conv = this.child(`up.${l}.conv`, new Conv2d(this.widths[l + 1]!, wl, 3, rng));
      this.up[l] = { conv, res: this.child(`up.${l}.res`, new ResBlock(2 * wl, wl, rng)) };
    }
    this.outNorm = this.child(
      "out_norm",
      new GroupNorm(groupsFor(this.widths[0]!), this.widths[0]!),
    );
    this.convOut = this.child("conv_out", new Conv2d(this.widths[0]!, cfg.latentChannels, 3, rng));
  }

  encode(xt: Tensor, t: ArrayLike<number>): EncodedPatches {
    const temb = this.tEmbed.forward(t);
    let h = this.convIn.forward(xt);
    const skips: Tensor[] = [];
    for (const { res, downsample } of this.down) {
      h = res.forward(h, temb);
      skips.push(h);
      h = downsample.forward(h);
    }
    h = this.toDim.forward(this.midDown.forward(h, temb));
    // [N, d, g, g] → [N·g·g, d] in raster order.
    return { tokens: reshape(permute(h, [0, 2, 3, 1]), [-1, this.cfg.dim]), skips };
  }

  decode(hTokens: Tensor, N: number, skips: Tensor[]): Tensor {
    const g = this.cfg.latentSize / this.cfg.patchSize;
    let h = permute(reshape(hTokens, [N, g, g, this.cfg.dim]), [0, 3, 1, 2]);
    h = this.midUp.forward(this.fromDim.forward(h), null);
    for (let l = this.levels - 1; l >= 0; l--) {
      const { conv, res } = this.up[l]!;
      h = conv.forward(upsampleNearest(h, 2));
      const skip = skips[l];
      if (!skip || skip.shape[0] !== N)
        throw new Error("UNetPatchCodec.decode: skips do not match the images");
      h = res.forward(concat([h, skip], 1), null);
    }
    return this.convOut.forward(silu(this.outNorm.forward(h)));
  }
}

/** Returns the patch codec the config asks for. */
export function makePatchCodec(cfg: TransfusionConfig, rng: Rng): PatchCodec {
  return cfg.encoder === "unet" ? new UNetPatchCodec(cfg, rng) : new LinearPatchCodec(cfg, rng);
}
