/**
 * The paper's comparisons (and one it did not run), each as a set of model variants trained on
 * the same data, seeds and budget. Variants are named so that experiments share runs: the
 * baseline is the same model in all of them, trained once per seed.
 */
import type { MixerOptions } from "../data/mixer.js";
import type { TransfusionConfig } from "../model/config.js";
import { swigluHidden } from "../nn/transformer.js";
import type { RunConfig } from "../train/run-config.js";

export interface Variant {
  /** Folder name of its runs (shared between experiments on the same data). */
  id: string;
  /** What differs, as the tables print it. */
  label: string;
  model?: Partial<TransfusionConfig>;
  mixer?: Partial<MixerOptions>;
  /** Training steps as a multiple of the experiment's `--steps` (default 1): compute budgets. */
  stepsScale?: number;
}

/**
 * The data an experiment trains and evaluates on: `easy` shapes (one shape: saturates quickly,
 * cheap) or MNIST digits (ten classes with real variety, where image quality still separates
 * models at this budget).
 */
export type ExperimentData = "shapes-easy" | "mnist";

export interface ExperimentSpec {
  name: string;
  title: string;
  /** What the paper reports for this comparison, quoted with its table number. */
  paper: string;
  /** Its data (default shapes-easy). */
  data?: ExperimentData;
  variants: Variant[];
  /** Guidance scales each model is evaluated at (default: [EVAL_GUIDANCE]). */
  guidance?: number[];
  /** Denoising steps per evaluation image (default: EVAL_SAMPLE_STEPS). */
  sampleSteps?: number;
}

/**
 * Respaced DDPM steps of the ablations' evaluations. The paper samples with 250; at 500 images
 * per evaluation that takes about 3 minutes here against 1¼ at 100, and the whole set of
 * comparisons would not fit its 6-hour budget. The headline comparison keeps the paper's 250.
 */
export const EVAL_SAMPLE_STEPS = 100;

/** The paper's sampling steps (§4.1), used for the Transfusion-vs-discrete comparison. */
export const PAPER_SAMPLE_STEPS = 250;

/**
 * The classifier-free guidance scale of every ablation but the sweep: the paper's 3 ("a CFG
 * coefficient of 3 throughout the ablation experiments", §4.1).
 */
export const EVAL_GUIDANCE = 3;

/** The scale of the Transfusion-vs-discrete comparison: the paper's 5 (§4.1, "following Chameleon"). */
export const COMPARISON_GUIDANCE = 5;

/** Codebook size of the discrete-token baseline's VQ tokenizer. */
export const CHAMELEON_CODES = 512;

/** The compute budgets of the comparison, as multiples of `--steps`: 8× from first to last. */
export const CHAMELEON_BUDGETS = [0.25, 0.75, 2];

/** The model every comparison starts from: bidirectional, linear patches of 2, λ = 5, cap 500. */
export const BASELINE: Variant = { id: "base", label: "baseline" };

export const EXPERIMENTS: Record<string, ExperimentSpec> = {
  attention: {
    name: "attention",
    title: "Bidirectional vs causal attention inside images (MNIST)",
    paper:
      "Table 5 (0.76B, 2×2 patches, CFG 3): with the linear encoder, causal → bidirectional attention inside images takes FID 61.3 → 20.3 and CIDEr 12.7 → 16.0; with the U-Net encoder FID 16.8 → 16.7 and CIDEr 23.3 → 25.4.",
    data: "mnist",
    variants: [
      { ...BASELINE, label: "bidirectional (baseline)" },
      { id: "causal", label: "causal", model: { imageAttention: "causal" } },
    ],
  },
  "noise-cap": {
    name: "noise-cap",
    title: "Noise cap t ≤ 500 on image-first (captioning) examples",
    paper:
      "Table 8 (U-Net, 2×2 patches): limiting the noise of image-first examples to t ≤ 500 raises captioning CIDEr 25.4 → 29.4 at 0.76B and 33.7 → 35.2 at 7B, with under 1% change on the other benchmarks.",
    variants: [
      { ...BASELINE, label: "cap at 500 (baseline)" },
      { id: "no-cap", label: "no cap", mixer: { noiseCap: null } },
    ],
  },
  encoder: {
    name: "encoder",
    title: "Linear vs U-Net patch encoder, patch sizes 1, 2 and 4 (MNIST)",
    paper:
      "Tables 6 and 7: the U-Net encoder beats the linear one at every patch size and model size (e.g. 0.76B at 8×8 patches, FID 43.5 linear vs 16.1 U-Net); larger patches cost the linear encoder more quality than the U-Net.",
    data: "mnist",
    variants: [
      { id: "linear-p1", label: "linear, patch 1", model: { encoder: "linear", patchSize: 1 } },
      { ...BASELINE, label: "linear, patch 2 (baseline)" },
      {
        id: "linear-p2-tpatch",
        label: "linear, patch 2, t added in patch space",
        model: { timestepEmbedding: "patch" },
      },
      { id: "linear-p4", label: "linear, patch 4", model: { encoder: "linear", patchSize: 4 } },
      {
        id: "unet-p1",
        label: "conv blocks without down/up level, patch 1",
        model: { encoder: "unet", patchSize: 1 },
      },
      { id: "unet-p2", label: "U-Net, patch 2", model: { encoder: "unet", patchSize: 2 } },
      { id: "unet-p4", label: "U-Net, patch 4", model: { encoder: "unet", patchSize: 4 } },
    ],
  },
  lambda: {
    name: "lambda",
    title: "Diffusion loss weight λ ∈ {1, 5, 10}",
    paper:
      "Not studied: the paper sets λ = 5 “following preliminary experiments” (§4.1) and reports no sweep.",
    variants: [
      { id: "lambda-1", label: "λ = 1", model: { lambda: 1 } },
      { ...BASELINE, label: "λ = 5 (baseline)" },
      { id: "lambda-10", label: "λ = 10", model: { lambda: 10 } },
    ],
  },
  guidance: {
    name: "guidance",
    title: "Classifier-free guidance scale: accuracy vs FID",
    paper:
      "§4.1: CFG 5 in the controlled comparison and 3 in the ablations; no sweep is reported. Diffusion models usually show a trade-off: more guidance, images closer to the prompt but less diverse.",
    variants: [{ ...BASELINE, label: "baseline" }],
    guidance: [1, 2, 3, 5, 7, 10],
  },
  chameleon: {
    name: "chameleon",
    title: "Transfusion vs a discrete-token (Chameleon-style) model at equal compute (MNIST)",
    paper:
      "Table 3 (7B, 0.5T tokens): Transfusion vs Chameleon C4 perplexity 7.72 vs 8.41, CIDEr 27.2 vs 18.0, FID 16.8 vs 29.6; parity FLOP ratios (the share of Chameleon's compute at which Transfusion matches it) 0.489 on C4 perplexity, 0.218 on CIDEr, 0.029 on FID (“34× less compute”).",
    data: "mnist",
    guidance: [COMPARISON_GUIDANCE],
    sampleSteps: PAPER_SAMPLE_STEPS,
    variants: CHAMELEON_BUDGETS.flatMap((scale) => [
      {
        id: `transfusion-x${scale}`,
        // "x", not "×": the sample grids' bitmap font has no multiplication sign.
        label: `Transfusion, ${scale}x steps`,
        stepsScale: scale,
      },
      {
        id: `chameleon-x${scale}`,
        label: `discrete tokens, ${scale}x steps`,
        model: { imageCodes: CHAMELEON_CODES },
        stepsScale: scale,
      },
    ]),
  },
};

export const EXPERIMENT_NAMES = Object.keys(EXPERIMENTS);

/** Returns the named experiment or throws listing the names. */
export function getExperiment(name: string): ExperimentSpec {
  const e = EXPERIMENTS[name];
  if (!e) {
    throw new Error(
      `unknown experiment '${name}' (expected one of: ${EXPERIMENT_NAMES.join(", ")}, or all)`,
    );
  }
  return e;
}

/** Returns the dataset fields of a run on the experiment data `d`. */
export function experimentData(
  d: ExperimentData = "shapes-easy",
): Pick<RunConfig, "data" | "shapesDifficulty"> {
  return d === "mnist" ? { data: "mnist" } : { data: "shapes", shapesDifficulty: "easy" };
}

/**
 * The run every variant modifies: 32 px images with Moby-Dick as the text half, one corpus-text
 * position per image–caption position (the paper's 1:1), a 128-wide 4-layer model (0.94M
 * parameters with a 512-token vocabulary), 128-position rows, 8 rows a step. Sized so one run
 * of 2,500 steps trains in about 3 minutes on a 2-core CPU.
 */
export function experimentRunConfig(steps: number, data?: ExperimentData): RunConfig {
  return {
    ...experimentData(data),
    // The `demo` model size (2×2 patches) narrowed to width 128.
    preset: "demo",
    model: { dim: 128, layers: 4, heads: 4, mlpHidden: swigluHidden(128) },
    seqLen: 128,
    rows: 8,
    vocabSize: 512,
    textCorpus: "moby-dick",
    mixer: { textRatio: 1 },
    // The discrete runs' VQ tokenizer downsamples as the VAE does (32 px → 8×8 codes), as the
    // paper's Chameleon tokenizer matched its VAE (256 px → 32×32 codes).
    vqvae: { config: { levels: 2 } },
    train: { steps, maxLr: 1.5e-3, warmupSteps: 100, checkpointEvery: 250 },
    maxImages: 10000,
    sampleEvery: 0,
  };
}
