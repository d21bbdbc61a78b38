/**
 * The VQ image tokenizer: the KL-VAE's encoder and decoder (model/vae.ts) around a
 * vector-quantised bottleneck, so an image [C, H, W] in [−1, 1] becomes a grid of
 * H/2^levels × W/2^levels code ids, the discrete image tokens of a Chameleon-style baseline.
 *
 * Each encoder output vector z is replaced by its nearest codebook row e (squared Euclidean
 * distance, ties to the lowest id). Training follows van den Oord et al. (2017):
 *   decoder input  z_q = z + sg(e − z)       (straight-through: ∂z_q/∂z = I)
 *   codebook loss  mean ‖sg(z) − e‖²          (moves the chosen codes towards their inputs)
 *   commit loss    β · mean ‖z − sg(e)‖²      (keeps the encoder near its codes)
 * The codebook is an ordinary parameter learned through the codebook loss (not an EMA of the
 * vectors assigned to each code), so it is saved, optimised and gradient-checked like every
 * other tensor. What EMA codebooks mostly guard against, codes that stop being chosen and so
 * never move again, the trainer handles by re-seeding them (train/vqvae-train.ts).
 */
import { Module, uniformInit } from "../nn/module.js";
import { add, affine, square, sub } from "../tensor/ops/elementwise.js";
import { mean } from "../tensor/ops/reduce.js";
import { concat, gather, permute, reshape } from "../tensor/ops/shape.js";
import type { Rng } from "../tensor/rng.js";
import { noGrad, type Tensor } from "../tensor/tensor.js";
import {
  type ConvStackConfig,
  checkConvStack,
  checkImageChannels,
  checkIntField,
  convStackDefaults,
  forBatches,
  INFERENCE_BATCH,
  VaeDecoder,
  VaeEncoder,
} from "./vae.js";

export interface VqVaeConfig extends ConvStackConfig {
  /** Length of each code vector (the encoder's output channels). */
  codeDim: number;
  /** Number of codes: image token ids are 0 … codebookSize − 1. */
  codebookSize: number;
  /** β, the weight of the commitment loss. */
  commitment: number;
}

/**
 * Returns a complete, validated config: defaults filled in (3 channels, 16-dimensional codes,
 * 512 codes, 3 levels = a 32×32 image becomes 4×4 codes, base width 32, one res block per
 * level, 8 groups, β = 0.25). Throws naming the field (prefixed by `where`) that is wrong.
 */
export function vqvaeConfig(
  partial: Partial<VqVaeConfig> = {},
  where = "vqvae config",
): VqVaeConfig {
  const { imageChannels, ...stack } = convStackDefaults(partial, partial.levels ?? 3, where);
  const cfg: VqVaeConfig = {
    imageChannels,
    codeDim: partial.codeDim ?? 16,
    codebookSize: partial.codebookSize ?? 512,
    ...stack,
    commitment: partial.commitment ?? 0.25,
  };
  checkImageChannels(where, cfg.imageChannels);
  checkIntField(where, "codeDim", cfg.codeDim, 1, 1024);
  checkIntField(where, "codebookSize", cfg.codebookSize, 1, 65536);
  const beta = cfg.commitment;
  if (typeof beta !== "number" || !Number.isFinite(beta) || beta < 0) {
    throw new Error(
      `${where}: field "commitment" must be a finite number ≥ 0, got ${JSON.stringify(beta)}`,
    );
  }
  return checkConvStack(cfg, partial, where);
}

/**
 * Returns, for each of the rows of `vectors` (row-major, `dim` wide), the id of the nearest
 * row of `codebook` in squared Euclidean distance; ties go to the lowest id.
 */
export function nearestCodes(
  vectors: Float32Array,
  codebook: Float32Array,
  dim: number,
): Int32Array {
  const M = vectors.length / dim;
  const K = codebook.length / dim;
  if (!Number.isInteger(M) || !Number.isInteger(K) || K < 1) {
    throw new Error(
      `nearestCodes: ${vectors.length} values and a codebook of ${codebook.length} are not rows of ${dim}`,
    );
  }
  const out = new Int32Array(M);
  for (let m = 0; m < M; m++) {
    const z = m * dim;
    let best = 0;
    let bestD = Number.POSITIVE_INFINITY;
    for (let k = 0; k < K; k++) {
      const e = k * dim;
      let d = 0;
      // Direct differences rather than ‖z‖² − 2z·e + ‖e‖²: exact ordering for near-equal codes.
      for (let i = 0; i < dim && d < bestD; i++) {
        const t = vectors[z + i]! - codebook[e + i]!;
        d += t * t;
      }
      if (d < bestD) {
        bestD = d;
        best = k;
      }
    }
    out[m] = best;
  }
  return out;
}

/** What the quantiser returns for an encoder output z [N, codeDim, h, w]. */
export interface Quantized {
  /** z + sg(e − z): the codes' values forward, the identity backward. */
  zq: Tensor;
  /** N·h·w code ids, raster order per image, image after image. */
  codes: Int32Array;
  codebookLoss: Tensor;
  /** Already multiplied by β. */
  commitLoss: Tensor;
}

/** The VQ-VAE: "encoder." and "decoder." as in the KL-VAE, plus "codebook" [codebookSize, codeDim]. */
export class VqVae extends Module {
  readonly config: VqVaeConfig;
  readonly encoder: VaeEncoder;
  readonly decoder: VaeDecoder;
  /** Row k is the vector of code k. */
  readonly codebook: Tensor;

  constructor(config: Partial<VqVaeConfig>, rng: Rng) {
    super();
    this.config = vqvaeConfig(config);
    const { codeDim, codebookSize } = this.config;
    this.encoder = this.child("encoder", new VaeEncoder(this.config, codeDim, rng));
    this.decoder = this.child("decoder", new VaeDecoder(this.config, codeDim, rng));
    // Small and data-blind; the trainer re-seeds unused codes from encoder outputs anyway.
    this.codebook = this.param(
      "codebook",
      uniformInit([codebookSize, codeDim], rng, 1 / codebookSize),
    );
  }

  /** Returns the side reduction factor 2^levels. */
  get downsampleFactor(): number {
    return 2 ** this.config.levels;
  }

  /** Returns the code grid [h, w] of an H×W image; throws unless 2^levels divides both. */
  codeGrid(height: number, width: number): [number, number] {
    const f = this.downsampleFactor;
    if (!(height > 0 && width > 0 && height % f === 0 && width % f === 0)) {
      throw new Error(
        `vqvae: image ${height}×${width} is not divisible by the downsampling factor ${f}`,
      );
    }
    return [height / f, width / f];
  }

  /** Returns the code grid [h, w] of images x; throws unless x is [N, C, H, W] with this C. */
  private checkImages(x: Tensor): [number, number] {
    if (x.rank !== 4 || x.shape[1] !== this.config.imageChannels) {
      throw new Error(
        `vqvae: expected images [N, ${this.config.imageChannels}, H, W], got [${x.shape.join(", ")}]`,
      );
    }
    return this.codeGrid(x.shape[2]!, x.shape[3]!);
  }

  /** Returns the encoder output z [N, codeDim, h, w] of images x [N, C, H, W] in [−1, 1]. */
  encode(x: Tensor): Tensor {
    this.checkImages(x);
    return this.encoder.forward(x);
  }

  /** Returns the quantised z with its code ids and the two losses (see the file comment). */
  quantize(z: Tensor): Quantized {
    const { codeDim: D, commitment } = this.config;
    if (z.rank !== 4 || z.shape[1] !== D) {
      throw new Error(`vqvae.quantize: expected z [N, ${D}, h, w], got [${z.shape.join(", ")}]`);
    }
    const [N, , h, w] = z.shape as [number, number, number, number];
    const rows = reshape(permute(z, [0, 2, 3, 1]), [N * h * w, D]);
    const codes = nearestCodes(rows.f32, this.codebook.f32, D);
    const e = gather(this.codebook, codes);
    const codebookLoss = mean(square(sub(rows.detach(), e)));
    const commitLoss = affine(mean(square(sub(rows, e.detach()))), commitment);
    const shift = noGrad(() => sub(this.codeGridOf(codes, N, h, w), z));
    return { zq: add(z, shift), codes, codebookLoss, commitLoss };
  }

  /**
   * Returns the reconstruction, code ids and losses of images x [N, C, H, W] in [−1, 1]
   * (recording the graph; the trainer adds its reconstruction loss), and z for code restarts.
   */
  forward(x: Tensor): {
    recon: Tensor;
    codes: Int32Array;
    codebookLoss: Tensor;
    commitLoss: Tensor;
    z: Tensor;
  } {
    const z = this.encode(x);
    const { zq, codes, codebookLoss, commitLoss } = this.quantize(z);
    return { recon: this.decoder.forward(zq), codes, codebookLoss, commitLoss, z };
  }

  /**
   * Returns the N·h·w code ids of images [N, C, H, W] in [−1, 1] (raster order per image,
   * image after image), without recording a graph, `batchSize` images at a time.
   */
  encodeCodes(images: Tensor, opts: { batchSize?: number } = {}): Int32Array {
    const [h, w] = this.checkImages(images);
    const out = new Int32Array(images.shape[0]! * h * w);
    const D = this.config.codeDim;
    forBatches(
      images,
      opts.batchSize ?? INFERENCE_BATCH,
      (x, at) => {
        const rows = noGrad(() => permute(this.encode(x), [0, 2, 3, 1]));
        out.set(nearestCodes(rows.f32, this.codebook.f32, D), at * h * w);
      },
      "vqvae",
    );
    return out;
  }

  /** Returns images [N, C, h·f, w·f] (unclamped) decoded from N·h·w code ids, without a graph. */
  decodeCodes(codes: Int32Array, N: number, h: number, w: number): Tensor {
    for (const [name, v] of [
      ["N", N],
      ["h", h],
      ["w", w],
    ] as const) {
      if (!Number.isInteger(v) || v < 1)
        throw new Error(`vqvae.decodeCodes: ${name} must be a positive integer, got ${v}`);
    }
    if (codes.length !== N * h * w) {
      throw new Error(
        `vqvae.decodeCodes: ${codes.length} codes for ${N} images of ${h}×${w} (expected ${N * h * w})`,
      );
    }
    const K = this.config.codebookSize;
    const bad = codes.findIndex((k) => !(k >= 0 && k < K));
    if (bad >= 0)
      throw new Error(`vqvae.decodeCodes: code ${codes[bad]} at index ${bad} is outside [0, ${K})`);
    const parts: Tensor[] = [];
    for (let at = 0; at < N; at += INFERENCE_BATCH) {
      const n = Math.min(INFERENCE_BATCH, N - at);
      const part = codes.subarray(at * h * w, (at + n) * h * w);
      parts.push(noGrad(() => this.decoder.forward(this.codeGridOf(part, n, h, w))));
    }
    return parts.length === 1 ? parts[0]! : noGrad(() => concat(parts, 0));
  }

  /** Returns the code vectors of `codes` laid out as a grid [N, codeDim, h, w], without a graph. */
  private codeGridOf(codes: Int32Array, N: number, h: number, w: number): Tensor {
    const D = this.config.codeDim;
    return noGrad(() => permute(reshape(gather(this.codebook, codes), [N, h, w, D]), [0, 3, 1, 2]));
  }
}
