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
  /** Folder name of its runs (shared between experiments). */
  id: string;
  /** What differs, as the tables print it. */
  label: string;
  model?: Partial<TransfusionConfig>;
  mixer?: Partial<MixerOptions>;
}

export interface ExperimentSpec {
  name: string;
  title: string;
  /** What the paper reports for this comparison. */
  paper: string;
  variants: Variant[];
  /** Guidance scales each model is evaluated at (default: [EVAL_GUIDANCE]). */
  guidance?: number[];
}

/** The classifier-free guidance scale of every evaluation but the sweep (the paper's 5). */
export const EVAL_GUIDANCE = 5;

/** The model every comparison starts from: bidirectional, linear patches of 2, λ = 5, cap 500. */
export const BASELINE: Variant = { id: "base", label: "baseline" };

export const EXPERIMENTS: Record<string, ExperimentSpec> = {
  attention: {
    name: "attention",
    title: "Bidirectional vs causal attention inside images",
    paper:
      "Table 6 (0.76B, linear encoder): FID 61.3 with causal attention → 20.3 with bidirectional; captioning and text unchanged.",
    variants: [
      { ...BASELINE, label: "bidirectional (baseline)" },
      { id: "causal", label: "causal", model: { imageAttention: "causal" } },
    ],
  },
  "noise-cap": {
    name: "noise-cap",
    title: "Noise cap t ≤ 500 on image-first (captioning) examples",
    paper:
      "Section 4.3: capping the noise of image-first examples at t = 500 improves captioning (+4 CIDEr at 0.76B) and leaves generation unchanged.",
    variants: [
      { ...BASELINE, label: "cap at 500 (baseline)" },
      { id: "no-cap", label: "no cap", mixer: { noiseCap: null } },
    ],
  },
  encoder: {
    name: "encoder",
    title: "Linear vs U-Net patch encoder, patch sizes 1, 2 and 4",
    paper:
      "Table 7: U-Net encoders beat linear ones at every patch size, and degrade less as patches grow (fewer image tokens); larger patches cost less compute.",
    variants: [
      { id: "linear-p1", label: "linear, patch 1", model: { encoder: "linear", patchSize: 1 } },
      { ...BASELINE, label: "linear, patch 2 (baseline)" },
      { id: "linear-p4", label: "linear, patch 4", model: { encoder: "linear", patchSize: 4 } },
      { id: "unet-p1", label: "U-Net, patch 1", model: { encoder: "unet", patchSize: 1 } },
      { id: "unet-p2", label: "U-Net, patch 2", model: { encoder: "unet", patchSize: 2 } },
      { id: "unet-p4", label: "U-Net, patch 4", model: { encoder: "unet", patchSize: 4 } },
    ],
  },
  lambda: {
    name: "lambda",
    title: "Diffusion loss weight λ ∈ {1, 5, 10}",
    paper: "Not studied: the paper fixes λ = 5.",
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
      "The paper evaluates generation with guidance 5 and reports the usual trade-off: more guidance, images closer to the prompt but less diverse.",
    variants: [{ ...BASELINE, label: "baseline" }],
    guidance: [1, 2, 3, 5],
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

/**
 * The run every variant modifies: easy shapes at 32 px with Moby-Dick as the text half, a
 * 128-wide 4-layer model (0.94M parameters with a 512-token vocabulary), 128-position rows, 8
 * rows a step. Sized so one run of 2,500 steps trains in about 5 minutes on a 2-core CPU.
 */
export function experimentRunConfig(steps: number): RunConfig {
  return {
    data: "shapes",
    shapesDifficulty: "easy",
    preset: "demo",
    model: { dim: 128, layers: 4, heads: 4, mlpHidden: swigluHidden(128) },
    seqLen: 128,
    rows: 8,
    vocabSize: 512,
    textCorpus: "moby-dick",
    // One book-text position per five image positions (the demo: one per two), so images learn faster.
    mixer: { textRatio: 0.2 },
    train: { steps, maxLr: 1.5e-3, warmupSteps: 100, checkpointEvery: 250 },
    maxImages: 10000,
    sampleEvery: 0,
  };
}
