/**
 * Run configuration files (JSON) and the run they apply over. A file may set any of:
 * `{ "preset", "data", "seqLen", "rows", "vocabSize", "textCorpus", "imageSize", "maxImages",
 *    "sampleEvery", "model": {…}, "train": {…}, "mixer": {…}, "vae": {…}, "vqvae": {…} }`.
 * Unknown or invalid fields are errors that name the field. `preset` names a model size in
 * `PRESETS` (model/config.ts), the only preset table; this file has none of its own.
 */
import { isShapesDifficulty } from "../data/datasets/index.js";
import { DEFAULT_MIXER, type MixerOptions } from "../data/mixer.js";
import { readJson } from "../io/checkpoint.js";
import { MODEL_FIELDS, makeConfig, type TransfusionConfig } from "../model/config.js";
import type { RunOptions } from "./run.js";
import { DEFAULT_TRAIN, type TrainSettings } from "./trainer.js";

/**
 * What a run config file, a command's defaults and its flags set: all of RunOptions but where
 * the run goes (`out`, `resume`, the autoencoder folders, the latent cache) and its callbacks.
 */
export type RunConfig = Omit<
  RunOptions,
  "out" | "onEvent" | "shouldStop" | "resume" | "vaeFrom" | "vqvaeFrom" | "latentCache"
>;

/**
 * The run `transfusion train` and `transfusion pack` make when no --config file or flag says
 * otherwise: the `small` model on `shapes` (medium), 8 rows of 256 positions, a 1,024-token
 * tokenizer, Moby-Dick as the text half, the trainer's and the mixer's defaults. (The demo's
 * defaults are `DEMO_RUN` in cli/demo.ts.)
 */
export const DEFAULT_RUN: RunConfig = {
  data: "shapes",
  preset: "small",
  seqLen: 256,
  rows: 8,
  vocabSize: 1024,
  textCorpus: "moby-dick",
  train: {},
  sampleEvery: 500,
};

/**
 * What `train` and `pack` change from DEFAULT_RUN for a dataset whose images DEFAULT_RUN does
 * not suit: on MNIST and Fashion-MNIST the `small` model's 1×1 patches (64 positions per image)
 * and the 1:1 text share learn too little in the first minutes for a user to see digits or
 * garments. These runs use the `demo` model size with 4×4 patches (4 positions per image, so
 * a step sees about 90 captioned images), one corpus-text position per ten image–caption
 * positions, and 10,000 steps. Measured on the 2-core machine (README, "Digits and garments"):
 * about 13 minutes with every stage, 100% (MNIST) and 99.4% (Fashion-MNIST) of images drawn
 * for held-out captions judged right by the evaluation classifier.
 */
export const DATA_RUNS: Readonly<Record<string, Partial<RunConfig>>> = {
  mnist: imageRun(),
  "fashion-mnist": imageRun(),
};

function imageRun(): Partial<RunConfig> {
  return {
    preset: "demo",
    model: { patchSize: 4 },
    seqLen: 128,
    rows: 8,
    vocabSize: 512,
    maxImages: 20000,
    mixer: { textRatio: 0.1 },
    train: { steps: 10000, maxLr: 1e-3, warmupSteps: 100, checkpointEvery: 1000 },
    sampleEvery: 2000,
  };
}

/** Returns the run `train` and `pack` start from for `data`: DEFAULT_RUN and its DATA_RUNS entry. */
export function defaultRun(data: string): RunConfig {
  return { ...DEFAULT_RUN, ...(Object.hasOwn(DATA_RUNS, data) ? DATA_RUNS[data] : {}), data };
}

const TOP = new Set([
  "preset",
  "data",
  "seqLen",
  "rows",
  "vocabSize",
  "textCorpus",
  "imageSize",
  "shapesDifficulty",
  "maxImages",
  "sampleEvery",
  "sampleCaptions",
  "model",
  "train",
  "mixer",
  "vae",
  "vqvae",
]);
const VAE_KEYS = new Set(["steps", "batchSize", "lr", "config"]);

function checkSection(
  section: string,
  value: unknown,
  allowed: ReadonlySet<string>,
  source: string,
): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error(`${source}: field "${section}" must be an object`);
  }
  for (const k of Object.keys(value)) {
    if (!allowed.has(k)) throw new Error(`${source}: unknown field "${section}.${k}"`);
  }
  return value as Record<string, unknown>;
}

/** Fields for which 0 means nothing (a run of no steps, a learning rate of 0). */
const POSITIVE = new Set(["train.steps", "train.maxLr", "mixer.maxTextChunk"]);

function checkNumbers(
  section: string,
  obj: Record<string, unknown>,
  source: string,
  nullable: string[] = [],
): void {
  for (const [k, v] of Object.entries(obj)) {
    if (v === null && nullable.includes(k)) continue;
    const positive = POSITIVE.has(`${section}.${k}`);
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || (positive && v === 0)) {
      throw new Error(
        `${source}: field "${section}.${k}" must be a number ${positive ? "> 0" : "≥ 0"}, got ${JSON.stringify(v)}`,
      );
    }
  }
}

/**
 * Returns a validated run config: `base` (a command's defaults, e.g. DEFAULT_RUN) with the
 * file's fields applied.
 */
export function parseRunConfig(raw: unknown, base: RunConfig, source = "config"): RunConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw new Error(`${source}: expected a JSON object`);
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o))
    if (!TOP.has(k)) throw new Error(`${source}: unknown field "${k}"`);
  const out: RunConfig = { ...base };
  const int = (k: string, min: number) => {
    const v = o[k];
    if (typeof v !== "number" || !Number.isInteger(v) || v < min) {
      throw new Error(
        `${source}: field "${k}" must be an integer ≥ ${min}, got ${JSON.stringify(v)}`,
      );
    }
    return v;
  };
  if (o.preset !== undefined) {
    if (typeof o.preset !== "string") throw new Error(`${source}: field "preset" must be a string`);
    out.preset = o.preset;
  }
  if (o.data !== undefined) {
    if (typeof o.data !== "string") throw new Error(`${source}: field "data" must be a string`);
    out.data = o.data;
  }
  if (o.textCorpus !== undefined) {
    if (o.textCorpus !== null && typeof o.textCorpus !== "string") {
      throw new Error(`${source}: field "textCorpus" must be a corpus name or null`);
    }
    out.textCorpus = o.textCorpus as string | null;
  }
  if (o.seqLen !== undefined) out.seqLen = int("seqLen", 8);
  if (o.rows !== undefined) out.rows = int("rows", 1);
  if (o.vocabSize !== undefined) out.vocabSize = int("vocabSize", 261);
  if (o.imageSize !== undefined) out.imageSize = int("imageSize", 8);
  if (o.maxImages !== undefined) out.maxImages = int("maxImages", 1);
  if (o.sampleEvery !== undefined) out.sampleEvery = int("sampleEvery", 0);
  if (o.shapesDifficulty !== undefined) {
    if (!isShapesDifficulty(o.shapesDifficulty)) {
      throw new Error(`${source}: field "shapesDifficulty" must be easy, medium or hard`);
    }
    out.shapesDifficulty = o.shapesDifficulty;
  }
  if (o.sampleCaptions !== undefined) {
    if (!Array.isArray(o.sampleCaptions) || !o.sampleCaptions.every((c) => typeof c === "string")) {
      throw new Error(`${source}: field "sampleCaptions" must be an array of strings`);
    }
    out.sampleCaptions = o.sampleCaptions as string[];
  }
  if (o.train !== undefined) {
    const t = checkSection("train", o.train, new Set(Object.keys(DEFAULT_TRAIN)), source);
    checkNumbers("train", t, source);
    out.train = { ...base.train, ...(t as Partial<TrainSettings>) };
  }
  if (o.mixer !== undefined) {
    const m = checkSection("mixer", o.mixer, new Set(Object.keys(DEFAULT_MIXER)), source);
    const { textDocuments, ...numbers } = m;
    checkNumbers("mixer", numbers, source, ["noiseCap"]);
    if (textDocuments !== undefined && textDocuments !== "whole" && textDocuments !== "filler") {
      throw new Error(
        `${source}: field "mixer.textDocuments" must be "whole" or "filler", got ${JSON.stringify(textDocuments)}`,
      );
    }
    out.mixer = { ...base.mixer, ...(m as Partial<MixerOptions>) };
  }
  if (o.vae !== undefined) {
    const v = checkSection("vae", o.vae, VAE_KEYS, source);
    out.vae = { ...base.vae, ...(v as RunConfig["vae"]) };
  }
  if (o.vqvae !== undefined) {
    const v = checkSection("vqvae", o.vqvae, VAE_KEYS, source);
    out.vqvae = { ...base.vqvae, ...(v as RunConfig["vqvae"]) };
  }
  if (o.model !== undefined) {
    checkSection("model", o.model, MODEL_FIELDS, source);
    out.model = { ...base.model, ...(o.model as Partial<TransfusionConfig>) };
  }
  // Validate the model part now: the preset is known and the overrides fit it (vocab and
  // latent shape are filled in by the run; a discrete-token model has one code per position).
  const codes = out.model?.imageCodes ?? 0;
  makeConfig(out.preset, {
    ...out.model,
    ...(codes > 0 ? { vocab: codes + 512, latentChannels: 1, patchSize: 1 } : {}),
  });
  return out;
}

/** Returns the run config in a JSON file applied over `base`; errors name the file and field. */
export function loadRunConfig(path: string, base: RunConfig): RunConfig {
  return parseRunConfig(readJson(path), base, path);
}
