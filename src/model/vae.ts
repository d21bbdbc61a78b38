/**
 * The image VAE (docs/RECIPE.md §3): a small convolutional KL-regularised autoencoder that maps an
 * image [C, H, W] in [−1, 1] to a latent grid [latentChannels, H/2^levels, W/2^levels].
 * Transfusion diffuses in its latent space, so it is trained first and then frozen.
 *
 * Layout (one resolution per level, widths from `channelMultipliers`):
 *   encoder: conv_in → per level {res blocks, stride-2 conv} → mid res blocks
 *            → GroupNorm, SiLU, conv to 2·latentChannels (mean ‖ log-variance)
 *   decoder: conv_in → mid res blocks → per level {nearest ×2, conv, res blocks}
 *            → GroupNorm, SiLU, conv to the image channels
 * Latents handed to diffusion are scaled: (z − shiftFactor) · scalingFactor, with both
 * factors measured on training data so that the scaled latents have zero mean, unit variance.
 */
import { Conv2d, GroupNorm } from "../nn/layers.js";
import { Module } from "../nn/module.js";
import { ResBlock } from "../nn/resblock.js";
import { upsampleNearest } from "../tensor/ops/conv.js";
import {
  add,
  addScalar,
  affine,
  exp,
  maximum,
  minimum,
  mul,
  scale,
  silu,
} from "../tensor/ops/elementwise.js";
import { concat, slice } from "../tensor/ops/shape.js";
import type { Rng } from "../tensor/rng.js";
import { full, noGrad, randn, Tensor } from "../tensor/tensor.js";

export interface VaeConfig {
  /** Channels of the images (1 grey, 3 RGB). */
  imageChannels: 1 | 3;
  /** Channels of the latent grid. */
  latentChannels: number;
  /** Number of stride-2 downsamplings: the latent is 2^levels times smaller per side. */
  levels: number;
  /** Width of the full-resolution stage. */
  baseChannels: number;
  /** Width of each resolution (levels + 1 entries, the last at latent resolution) ÷ base. */
  channelMultipliers: number[];
  /** Residual blocks at each resolution (and in the middle of encoder and decoder). */
  resBlocksPerLevel: number;
  /** GroupNorm groups; must divide every width. */
  groups: number;
}

/** Bounds on the encoder's log-variance, so exp() can neither overflow nor vanish to 0. */
export const LOGVAR_MIN = -30;
export const LOGVAR_MAX = 20;

/** Returns the default multipliers for `levels`: base width at full resolution, 2× below. */
export function defaultMultipliers(levels: number): number[] {
  return Array.from({ length: levels + 1 }, (_, i) => (i === 0 ? 1 : 2));
}

/** The architecture fields the KL-VAE and the VQ-VAE share: the convolutional stack. */
export type ConvStackConfig = Pick<
  VaeConfig,
  | "imageChannels"
  | "levels"
  | "baseChannels"
  | "channelMultipliers"
  | "resBlocksPerLevel"
  | "groups"
>;

/** Throws naming `field` (prefixed by `where`) unless v is an integer in [min, max]. */
export function checkIntField(
  where: string,
  field: string,
  v: unknown,
  min: number,
  max: number,
): void {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new Error(
      `${where}: field "${field}" must be an integer in [${min}, ${max}], got ${JSON.stringify(v)}`,
    );
  }
}

/**
 * Returns the stack fields of `partial` with defaults for `levels` (3 channels, base width 32,
 * one res block per level, 8 groups); `levels` itself is checked first, as it sizes the
 * default multipliers.
 */
export function convStackDefaults(
  partial: Partial<ConvStackConfig>,
  levels: number,
  where: string,
): ConvStackConfig {
  checkIntField(where, "levels", levels, 0, 6);
  return {
    imageChannels: partial.imageChannels ?? 3,
    levels,
    baseChannels: partial.baseChannels ?? 32,
    channelMultipliers: partial.channelMultipliers ?? defaultMultipliers(levels),
    resBlocksPerLevel: partial.resBlocksPerLevel ?? 1,
    groups: partial.groups ?? 8,
  };
}

/** Throws naming the field unless imageChannels is 1 or 3. */
export function checkImageChannels(where: string, v: unknown): void {
  if (v !== 1 && v !== 3)
    throw new Error(`${where}: field "imageChannels" must be 1 or 3, got ${JSON.stringify(v)}`);
}

/**
 * Checks widths, blocks, groups and multipliers, then that `partial` names only fields of
 * `cfg`; returns cfg with its own copy of the multipliers. Throws naming the first bad field.
 */
export function checkConvStack<C extends ConvStackConfig>(
  cfg: C,
  partial: object,
  where: string,
): C {
  checkIntField(where, "baseChannels", cfg.baseChannels, 1, 1024);
  checkIntField(where, "resBlocksPerLevel", cfg.resBlocksPerLevel, 0, 8);
  checkIntField(where, "groups", cfg.groups, 1, 1024);
  const mults = cfg.channelMultipliers;
  if (!Array.isArray(mults) || mults.length !== cfg.levels + 1) {
    throw new Error(
      `${where}: field "channelMultipliers" must list ${cfg.levels + 1} integers (levels + 1), got ${JSON.stringify(mults)}`,
    );
  }
  mults.forEach((m, i) => {
    if (typeof m !== "number" || !Number.isInteger(m) || m < 1 || m > 16) {
      throw new Error(
        `${where}: field "channelMultipliers[${i}]" must be an integer in [1, 16], got ${JSON.stringify(m)}`,
      );
    }
    const width = m * cfg.baseChannels;
    if (width % cfg.groups !== 0) {
      throw new Error(
        `${where}: field "groups" (${cfg.groups}) must divide every width, but level ${i} has ${width} channels`,
      );
    }
  });
  const known = new Set(Object.keys(cfg));
  for (const k of Object.keys(partial)) {
    if (!known.has(k)) throw new Error(`${where}: unknown field "${k}"`);
  }
  return { ...cfg, channelMultipliers: [...mults] };
}

/**
 * Returns a complete, validated config: defaults filled in (3 channels, 4 latent channels,
 * 2 levels = factor 4, base width 32, one res block per level, 8 groups). Throws naming the
 * field (prefixed by `where`) that is wrong.
 */
export function vaeConfig(partial: Partial<VaeConfig> = {}, where = "vae config"): VaeConfig {
  const { imageChannels, ...stack } = convStackDefaults(partial, partial.levels ?? 2, where);
  // latentChannels second, as before the stack was shared: vae.json lists fields in this order.
  const cfg: VaeConfig = { imageChannels, latentChannels: partial.latentChannels ?? 4, ...stack };
  checkImageChannels(where, cfg.imageChannels);
  checkIntField(where, "latentChannels", cfg.latentChannels, 1, 64);
  return checkConvStack(cfg, partial, where);
}

/**
 * Returns what a stack's constructor builds from: the width of each level, and a maker of
 * cfg.resBlocksPerLevel res blocks of a width, registered through `register` as `prefix.j`.
 */
function stackParts(
  cfg: ConvStackConfig,
  rng: Rng,
  register: (name: string, b: ResBlock) => ResBlock,
): { w: number[]; blocks: (prefix: string, ch: number) => ResBlock[] } {
  const blocks = (prefix: string, ch: number) =>
    Array.from({ length: cfg.resBlocksPerLevel }, (_, j) =>
      register(`${prefix}.${j}`, new ResBlock(ch, ch, rng, { groups: cfg.groups })),
    );
  return { w: cfg.channelMultipliers.map((m) => m * cfg.baseChannels), blocks };
}

/** Returns x after each block in turn. */
export function runBlocks(blocks: readonly ResBlock[], x: Tensor): Tensor {
  for (const b of blocks) x = b.forward(x);
  return x;
}

/**
 * The encoder stack; its last conv has `outChannels` outputs (the KL-VAE's mean ‖ log-variance,
 * the VQ-VAE's code vectors).
 */
export class VaeEncoder extends Module {
  private readonly convIn: Conv2d;
  /** down[i] holds the tensors named `down.i.*`, one per level from full resolution down. */
  private readonly down: Array<{ res: ResBlock[]; downsample: Conv2d }> = [];
  private readonly mid: ResBlock[];
  private readonly normOut: GroupNorm;
  private readonly convOut: Conv2d;
  constructor(cfg: ConvStackConfig, outChannels: number, rng: Rng) {
    super();
    const { w, blocks } = stackParts(cfg, rng, (name, b) => this.child(name, b));
    this.convIn = this.child("conv_in", new Conv2d(cfg.imageChannels, w[0]!, 3, rng));
    for (let i = 0; i < cfg.levels; i++) {
      const res = blocks(`down.${i}.res`, w[i]!);
      const downsample = this.child(
        `down.${i}.downsample`,
        new Conv2d(w[i]!, w[i + 1]!, 3, rng, 2, 1),
      );
      this.down.push({ res, downsample });
    }
    const wl = w[cfg.levels]!;
    this.mid = blocks("mid", wl);
    this.normOut = this.child("norm_out", new GroupNorm(cfg.groups, wl));
    this.convOut = this.child("conv_out", new Conv2d(wl, outChannels, 3, rng));
  }
  /** Returns the raw encoder output [N, outChannels, h, w]. */
  forward(x: Tensor): Tensor {
    let h = this.convIn.forward(x);
    for (const d of this.down) h = d.downsample.forward(runBlocks(d.res, h));
    h = runBlocks(this.mid, h);
    return this.convOut.forward(silu(this.normOut.forward(h)));
  }
}

/** The decoder stack, reading a grid of `inChannels` (latents or code vectors). */
export class VaeDecoder extends Module {
  private readonly convIn: Conv2d;
  private readonly mid: ResBlock[];
  /** up[i] holds the tensors named `up.i.*`: level i + 1 → i (run from the bottom up). */
  private readonly up: Array<{ upsample: Conv2d; res: ResBlock[] }> = [];
  private readonly normOut: GroupNorm;
  private readonly convOut: Conv2d;
  constructor(cfg: ConvStackConfig, inChannels: number, rng: Rng) {
    super();
    const { w, blocks } = stackParts(cfg, rng, (name, b) => this.child(name, b));
    const wl = w[cfg.levels]!;
    this.convIn = this.child("conv_in", new Conv2d(inChannels, wl, 3, rng));
    this.mid = blocks("mid", wl);
    // up.i goes from resolution level i+1 to level i; built from the bottom up (data order).
    for (let i = cfg.levels - 1; i >= 0; i--) {
      const upsample = this.child(`up.${i}.upsample`, new Conv2d(w[i + 1]!, w[i]!, 3, rng));
      this.up[i] = { upsample, res: blocks(`up.${i}.res`, w[i]!) };
    }
    this.normOut = this.child("norm_out", new GroupNorm(cfg.groups, w[0]!));
    this.convOut = this.child("conv_out", new Conv2d(w[0]!, cfg.imageChannels, 3, rng));
  }
  /** Returns the reconstructed image [N, imageChannels, H, W] (unclamped). */
  forward(z: Tensor): Tensor {
    let h = runBlocks(this.mid, this.convIn.forward(z));
    for (let i = this.up.length - 1; i >= 0; i--) {
      const { upsample, res } = this.up[i]!;
      h = runBlocks(res, upsample.forward(upsampleNearest(h, 2)));
    }
    return this.convOut.forward(silu(this.normOut.forward(h)));
  }
}

/** Default batch for the no-grad convenience calls: bounded memory, still BLAS-sized. */
export const INFERENCE_BATCH = 64;

/** The KL-VAE: parameters under "encoder." and "decoder.", plus the latent scaling factors. */
export class Vae extends Module {
  readonly config: VaeConfig;
  readonly encoder: VaeEncoder;
  readonly decoder: VaeDecoder;
  /** Multiplies shifted latents so that they have unit variance on the training data. */
  scalingFactor = 1;
  /** Subtracted from raw latents before scaling (their mean on the training data). */
  shiftFactor = 0;

  constructor(config: Partial<VaeConfig>, rng: Rng) {
    super();
    this.config = vaeConfig(config);
    this.encoder = this.child(
      "encoder",
      new VaeEncoder(this.config, 2 * this.config.latentChannels, rng),
    );
    this.decoder = this.child(
      "decoder",
      new VaeDecoder(this.config, this.config.latentChannels, rng),
    );
  }

  /** Returns the side reduction factor 2^levels. */
  get downsampleFactor(): number {
    return 2 ** this.config.levels;
  }

  /** Returns the latent shape [C, h, w] for an image of H×W; throws unless 2^levels divides both. */
  latentShape(height: number, width: number): [number, number, number] {
    const f = this.downsampleFactor;
    if (height % f !== 0 || width % f !== 0) {
      throw new Error(
        `vae: image ${height}×${width} is not divisible by the downsampling factor ${f}`,
      );
    }
    return [this.config.latentChannels, height / f, width / f];
  }

  /** Returns the posterior's mean and clamped log-variance for images x [N, C, H, W] in [−1, 1]. */
  encode(x: Tensor): { mean: Tensor; logvar: Tensor } {
    if (x.rank !== 4 || x.shape[1] !== this.config.imageChannels) {
      throw new Error(
        `vae.encode: expected images [N, ${this.config.imageChannels}, H, W], got [${x.shape.join(", ")}]`,
      );
    }
    this.latentShape(x.shape[2]!, x.shape[3]!);
    const h = this.encoder.forward(x);
    const c = this.config.latentChannels;
    const mean = slice(h, 1, 0, c);
    const raw = slice(h, 1, c, 2 * c);
    const logvar = minimum(maximum(raw, full([1], LOGVAR_MIN)), full([1], LOGVAR_MAX));
    return { mean, logvar };
  }

  /** Returns a draw z = mean + exp(logvar / 2) · ε from the posterior (reparameterised). */
  sample(mean: Tensor, logvar: Tensor, rng: Rng): Tensor {
    const std = exp(affine(logvar, 0.5));
    return add(mean, mul(std, randn(mean.shape, rng)));
  }

  /** Returns the images [N, C, H, W] (roughly in [−1, 1], unclamped) decoded from raw latents z. */
  decode(z: Tensor): Tensor {
    if (z.rank !== 4 || z.shape[1] !== this.config.latentChannels) {
      throw new Error(
        `vae.decode: expected latents [N, ${this.config.latentChannels}, h, w], got [${z.shape.join(", ")}]`,
      );
    }
    return this.decoder.forward(z);
  }

  /**
   * Returns scaled latents (z − shift) · scale [N, latentChannels, h, w] of images
   * [N, C, H, W] in [−1, 1], without recording a graph, `batchSize` images at a time. Uses
   * the posterior mean, unless `rng` is given, in which case it samples the posterior.
   */
  encodeLatents(images: Tensor, opts: { batchSize?: number; rng?: Rng } = {}): Tensor {
    const [, , H, W] = images.shape as [number, number, number, number];
    this.latentShape(H, W);
    return noGrad(() =>
      mapBatches(images, opts.batchSize ?? INFERENCE_BATCH, (x) => {
        const { mean, logvar } = this.encode(x);
        const z = opts.rng ? this.sample(mean, logvar, opts.rng) : mean;
        return scale(addScalar(z, -this.shiftFactor), this.scalingFactor);
      }),
    );
  }

  /** Returns images [N, C, H, W] (unclamped) decoded from scaled latents, without a graph. */
  decodeLatents(latents: Tensor, opts: { batchSize?: number } = {}): Tensor {
    const inv = 1 / this.scalingFactor;
    return noGrad(() =>
      mapBatches(latents, opts.batchSize ?? INFERENCE_BATCH, (zs) =>
        this.decode(affine(zs, inv, this.shiftFactor)),
      ),
    );
  }
}

/**
 * Returns fn applied to consecutive slices of x along axis 0, `batchSize` at a time, the
 * results joined along axis 0. Nothing is read back, so it runs on any backend; errors start
 * with `who`.
 */
export function mapBatches(
  x: Tensor,
  batchSize: number,
  fn: (part: Tensor) => Tensor,
  who = "vae",
): Tensor {
  checkBatches(x, batchSize, who);
  const N = x.shape[0]!;
  if (N <= batchSize) return fn(x);
  const parts: Tensor[] = [];
  for (let at = 0; at < N; at += batchSize)
    parts.push(fn(slice(x, 0, at, Math.min(N, at + batchSize))));
  return concat(parts, 0);
}

function checkBatches(x: Tensor, batchSize: number, who: string): void {
  if (x.rank !== 4) throw new Error(`${who}: expected a 4-D batch, got [${x.shape.join(", ")}]`);
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new Error(`${who}: batchSize must be a positive integer, got ${batchSize}`);
  }
}

/** Calls fn on consecutive slices of x along axis 0 (each with its first index); errors start with `who`. */
export function forBatches(
  x: Tensor,
  batchSize: number,
  fn: (part: Tensor, at: number) => void,
  who = "vae",
): void {
  checkBatches(x, batchSize, who);
  const N = x.shape[0]!;
  const per = x.size / Math.max(1, N);
  for (let at = 0; at < N; at += batchSize) {
    const n = Math.min(batchSize, N - at);
    const part = new Tensor(x.f32.subarray(at * per, (at + n) * per), [n, ...x.shape.slice(1)]);
    fn(part, at);
  }
}
