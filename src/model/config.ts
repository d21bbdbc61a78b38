/**
 * The Transfusion model configuration: a typed object with the recipe's defaults (docs/RECIPE.md),
 * the named model sizes (`PRESETS`, the project's only preset table: `--preset` and a run's
 * `preset` field choose from it), and validation that names the offending field.
 */
import { swigluHidden } from "../nn/transformer.js";

export type PatchEncoderKind = "linear" | "unet";

export interface TransfusionConfig {
  /** Text vocabulary size (including the special tokens). */
  vocab: number;
  dim: number;
  layers: number;
  heads: number;
  /** SwiGLU hidden size (≈ 8/3·dim by default). */
  mlpHidden: number;
  ropeTheta: number;
  /** Latent grid of one image: channels × size × size (the VAE's output). */
  latentChannels: number;
  latentSize: number;
  /** Side of the square patch cut from the latent: 1, 2, 4 or 8. */
  patchSize: number;
  /** Patch encoder/decoder between latent patches and the transformer width. */
  encoder: PatchEncoderKind;
  /** Channel width of the U-Net blocks (encoder "unet" only). */
  unetWidth: number;
  /** Attention among patches of one image: bidirectional (paper) or causal (ablation). */
  imageAttention: "bidirectional" | "causal";
  /** Patch positions: 1-D RoPE over the sequence (default) or 2-D RoPE over the grid. */
  patchRope: "1d" | "2d";
  /**
   * Diffusion objective: DDPM ε-prediction (paper) or flow matching (option): x_t = (1−t)·x0 + t·ε
   * with the velocity ε − x0 as target; generation then needs the flow-euler sampler.
   */
  objective: "ddpm" | "flow";
  /**
   * Mixture-of-Transformers option (off = the paper): image patch positions use their own
   * q/k/v/o projections and SwiGLU weights (`…attn.q_proj_image`, `…mlp_image`), text positions
   * the shared ones; attention still runs over the whole mixed sequence.
   */
  modalitySpecific: boolean;
  /** Diffusion steps the model is trained on. */
  diffusionSteps: number;
  /** Weight of the diffusion loss: L = L_LM + λ·L_DDPM. */
  lambda: number;
  /**
   * Where the linear codec adds the timestep embedding: "width" (after the patch projection, in
   * model width, as the U-Net adds it inside its blocks) or "patch" (to the C·k² patch values
   * before the projection; checkpoints made before the option existed).
   */
  timestepEmbedding: "width" | "patch";
  /**
   * 0 for Transfusion. A positive K makes the discrete-token (Chameleon-style) baseline: images
   * are runs of K-way VQ codes between BOI and EOI, the last K ids of the vocabulary, trained
   * with the next-token loss only; `latentSize` is then the side of the code grid, `patchSize`
   * 1 and `latentChannels` 1, and there is no patch codec.
   */
  imageCodes: number;
}

/** Returns true for the discrete-token (Chameleon-style) model. */
export function isDiscrete(c: Pick<TransfusionConfig, "imageCodes">): boolean {
  return c.imageCodes > 0;
}

/** Returns the token id of VQ code k (codes take the last `imageCodes` ids of the vocabulary). */
export function codeToken(c: Pick<TransfusionConfig, "vocab" | "imageCodes">, k: number): number {
  return c.vocab - c.imageCodes + k;
}

/** Returns the size of the text vocabulary (the whole vocabulary but the image codes). */
export function textVocab(c: Pick<TransfusionConfig, "vocab" | "imageCodes">): number {
  return c.vocab - c.imageCodes;
}

/** Returns the number of patches per image. */
export function patchesPerImage(c: TransfusionConfig): number {
  const g = c.latentSize / c.patchSize;
  return g * g;
}

/** Returns the length of one patch vector (C·k²). */
export function patchDim(c: TransfusionConfig): number {
  return c.latentChannels * c.patchSize * c.patchSize;
}

const BASE: Omit<TransfusionConfig, "vocab" | "dim" | "layers" | "heads" | "mlpHidden"> = {
  ropeTheta: 10000,
  latentChannels: 4,
  latentSize: 8,
  patchSize: 1,
  encoder: "linear",
  unetWidth: 64,
  imageAttention: "bidirectional",
  patchRope: "1d",
  objective: "ddpm",
  modalitySpecific: false,
  diffusionSteps: 1000,
  lambda: 5,
  timestepEmbedding: "width",
  imageCodes: 0,
};

function preset(vocab: number, dim: number, layers: number, heads: number): TransfusionConfig {
  return { ...BASE, vocab, dim, layers, heads, mlpHidden: swigluHidden(dim) };
}

/**
 * The named model sizes: the only presets there are. A run names one (`--preset`, the `preset`
 * field of a run config, `RunOptions.preset`) and may override any field (`model`); `vocab`,
 * `latentChannels` and `latentSize` are then replaced by what the run's tokenizer and image
 * autoencoder make. A preset sets nothing but the model: a run's data, sequence length, steps
 * and mixer come from the command that starts it (see docs/ARCHITECTURE.md, "From flags to
 * model"). Parameter counts are at the preset's own vocabulary.
 */
export const PRESETS: Record<string, () => TransfusionConfig> = {
  /** Width 64, 2 layers, patch 1 (0.19M parameters): for tests. */
  tiny: () => preset(512, 64, 2, 4),
  /**
   * Width 192, 4 layers, 2×2 patches (16 positions per 32-px image; 2.0M parameters): what
   * `train --data mnist` and `--data fashion-mnist` train (with 4×4 patches), and, narrowed
   * to width 128, what `transfusion demo` trains and the model of the experiments.
   */
  demo: () => ({ ...preset(512, 192, 4, 4), patchSize: 2 }),
  /** Width 256, 6 layers, patch 1 (5.4M parameters): what `transfusion train` trains by default. */
  small: () => preset(1024, 256, 6, 4),
  /** Width 384, 8 layers, patch 1 (17.5M parameters): for longer runs. */
  base: () => preset(4096, 384, 8, 6),
  /**
   * The paper's smallest size (its 0.16B model): width 768, 16 layers, 2×2 patches of
   * 8-channel 32×32 latents, a 65,536-token vocabulary. It validates; it is far too large to
   * train here.
   */
  "paper-0.16B": () => ({
    ...preset(65536, 768, 16, 12),
    latentChannels: 8,
    latentSize: 32,
    patchSize: 2,
  }),
};

/** Returns the preset `name`'s config, or throws listing the presets. */
export function presetConfig(name: string): TransfusionConfig {
  const make = PRESETS[name];
  if (!make)
    throw new Error(`unknown preset "${name}"; choose one of ${Object.keys(PRESETS).join(", ")}`);
  return make();
}

/** Returns the preset `name` with `overrides` applied and validated. */
export function makeConfig(
  name: string,
  overrides: Partial<TransfusionConfig> = {},
): TransfusionConfig {
  return validateConfig({ ...presetConfig(name), ...overrides });
}

/** The field names of a TransfusionConfig (what a run config's "model" section may set). */
export const MODEL_FIELDS: ReadonlySet<string> = new Set<string>(
  Object.keys({ ...BASE, vocab: 0, dim: 0, layers: 0, heads: 0, mlpHidden: 0 }),
);

/** Returns a validated config from untrusted JSON; unknown or invalid fields throw by name. */
export function validateConfig(raw: unknown, source = "config"): TransfusionConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new Error(`${source}: expected a JSON object`);
  }
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!MODEL_FIELDS.has(k)) throw new Error(`${source}: unknown field "${k}"`);
  }
  const int = (k: string, min: number): number => {
    const v = o[k];
    if (typeof v !== "number" || !Number.isInteger(v) || v < min) {
      throw new Error(
        `${source}: field "${k}" must be an integer ≥ ${min}, got ${JSON.stringify(v)}`,
      );
    }
    return v;
  };
  const num = (k: string, min: number): number => {
    const v = o[k];
    if (typeof v !== "number" || !Number.isFinite(v) || v < min) {
      throw new Error(
        `${source}: field "${k}" must be a number ≥ ${min}, got ${JSON.stringify(v)}`,
      );
    }
    return v;
  };
  const oneOf = <T extends string>(k: string, allowed: readonly T[]): T => {
    const v = o[k];
    if (typeof v !== "string" || !allowed.includes(v as T)) {
      throw new Error(
        `${source}: field "${k}" must be one of ${allowed.join(", ")}, got ${JSON.stringify(v)}`,
      );
    }
    return v as T;
  };
  const bool = (k: string, absent: boolean): boolean => {
    const v = o[k];
    if (v === undefined) return absent;
    if (typeof v !== "boolean") {
      throw new Error(`${source}: field "${k}" must be true or false, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  const c: TransfusionConfig = {
    vocab: int("vocab", 8),
    dim: int("dim", 8),
    layers: int("layers", 1),
    heads: int("heads", 1),
    mlpHidden: int("mlpHidden", 1),
    ropeTheta: num("ropeTheta", 1),
    latentChannels: int("latentChannels", 1),
    latentSize: int("latentSize", 1),
    patchSize: int("patchSize", 1),
    encoder: oneOf("encoder", ["linear", "unet"] as const),
    unetWidth: int("unetWidth", 4),
    imageAttention: oneOf("imageAttention", ["bidirectional", "causal"] as const),
    patchRope: oneOf("patchRope", ["1d", "2d"] as const),
    objective: oneOf("objective", ["ddpm", "flow"] as const),
    // Configs saved before the option existed lack the field: they are the shared-weight model.
    modalitySpecific: bool("modalitySpecific", false),
    diffusionSteps: int("diffusionSteps", 2),
    lambda: num("lambda", 0),
    // Configs saved before these options existed are linear codecs with t in patch space, and
    // Transfusion models.
    timestepEmbedding:
      o.timestepEmbedding === undefined
        ? "patch"
        : oneOf("timestepEmbedding", ["width", "patch"] as const),
    imageCodes: o.imageCodes === undefined ? 0 : int("imageCodes", 0),
  };
  if (c.dim % c.heads !== 0)
    throw new Error(`${source}: "dim" (${c.dim}) must be divisible by "heads" (${c.heads})`);
  const headDim = c.dim / c.heads;
  if (headDim % 2 !== 0)
    throw new Error(`${source}: head dimension dim/heads = ${headDim} must be even (RoPE)`);
  if (c.patchRope === "2d" && headDim % 4 !== 0) {
    throw new Error(`${source}: 2-D RoPE needs dim/heads divisible by 4, got ${headDim}`);
  }
  if (![1, 2, 4, 8].includes(c.patchSize))
    throw new Error(`${source}: "patchSize" must be 1, 2, 4 or 8`);
  if (c.latentSize % c.patchSize !== 0) {
    throw new Error(
      `${source}: "latentSize" ${c.latentSize} is not divisible by "patchSize" ${c.patchSize}`,
    );
  }
  if (isDiscrete(c)) {
    if (c.patchSize !== 1 || c.latentChannels !== 1) {
      throw new Error(
        `${source}: a discrete-token model ("imageCodes" > 0) takes one code per position: "patchSize" and "latentChannels" must be 1`,
      );
    }
    if (c.vocab <= c.imageCodes) {
      throw new Error(
        `${source}: "vocab" (${c.vocab}) must exceed "imageCodes" (${c.imageCodes}): the text tokens come first`,
      );
    }
  }
  if (c.encoder === "unet" && c.unetWidth % 4 !== 0) {
    throw new Error(`${source}: "unetWidth" must be a multiple of 4 (GroupNorm groups)`);
  }
  return c;
}
