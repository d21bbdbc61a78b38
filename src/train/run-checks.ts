/**
 * The checks a run makes before its expensive stages (data loading, tokenizer, VAE, latents):
 * option names and numbers, whether every document fits a sequence, and — when the output
 * folder holds a checkpoint — whether the run asked for is the run that was saved. A resume
 * that silently kept the saved model, data or tokenizer while the user asked for others would
 * produce numbers nobody asked for, so every such difference is refused by name.
 */
import { resolve } from "node:path";
import { DATASET_NAMES, TEXT_CORPUS_NAMES } from "../data/datasets/index.js";
import { DEFAULT_MIXER, type MixerOptions } from "../data/mixer.js";
import type { CheckpointConfig } from "../io/checkpoint.js";
import { autoencoderFingerprint } from "../io/integrity.js";
import { loadVae, VAE_WEIGHTS_FILE } from "../io/vae-files.js";
import { loadVqVae, VQVAE_WEIGHTS_FILE } from "../io/vqvae-files.js";
import { presetConfig, type TransfusionConfig, validateConfig } from "../model/config.js";
import type { RunOptions } from "./run.js";
import { DEFAULT_TRAIN, type TrainSettings } from "./trainer.js";

/** How a run got its image autoencoder: from a folder, or trained by the run with settings. */
export type AutoencoderChoice = { from: string } | { train: Record<string, unknown> };

/** What config.json's "run" section records about the options a run was started with. */
export interface RunRecord {
  preset: string;
  textCorpus: string | null;
  shapesDifficulty: string | null;
  imageSize: number;
  maxImages: number | null;
  vocabSize: number;
  /** The JSONL file as an absolute path (null for a named dataset). */
  dataFile: string | null;
  vae: AutoencoderChoice;
  vqvae: AutoencoderChoice;
  sampleEvery: number;
  sampleCaptions: string[] | null;
}

/** Train settings that may change when a run resumes: they decide how long and how often. */
const RESUMABLE_TRAIN = new Set<keyof TrainSettings>(["steps", "checkpointEvery", "nanPatience"]);

/** The model fields that come from the tokenizer and the autoencoder, not from the options. */
const DERIVED_MODEL = new Set(["vocab", "latentChannels", "latentSize"]);

/** Returns the training settings a run uses: defaults with the run's overrides. */
export function runSettings(o: RunOptions): TrainSettings {
  return { ...DEFAULT_TRAIN, ...o.train };
}

/**
 * Returns the model fields the options ask for: the preset's (model/config.ts, `PRESETS`), then
 * the `model` overrides; a discrete-token model (`model.imageCodes` > 0) has one code per
 * position, so patch 1. Not yet validated, and `vocab`, `latentChannels` and `latentSize` are
 * still the preset's: the tokenizer and the autoencoder decide them (`requestedModel`). Throws
 * for an unknown preset. This is the one place a preset name becomes model fields.
 */
export function requestedFields(o: Pick<RunOptions, "preset" | "model">): TransfusionConfig {
  const discrete = (o.model?.imageCodes ?? 0) > 0;
  return { ...presetConfig(o.preset), ...o.model, ...(discrete ? { patchSize: 1 } : {}) };
}

/**
 * Returns the model config the options ask for (`requestedFields`), with the tokenizer- and
 * autoencoder-derived fields taken from `derived`. Throws naming the preset or the "model"
 * field that is wrong.
 */
export function requestedModel(
  o: Pick<RunOptions, "preset" | "model">,
  derived: Pick<TransfusionConfig, "vocab" | "latentChannels" | "latentSize">,
): TransfusionConfig {
  return validateConfig({ ...requestedFields(o), ...derived }, "model");
}

/**
 * Returns nothing; throws, naming the option, for what a run would otherwise discover only
 * after loading data or training a tokenizer or VAE: an unknown preset, dataset or corpus,
 * a model override that does not validate, numbers out of range.
 */
export function checkRunOptions(o: RunOptions): void {
  const int = (name: string, v: unknown, min: number) => {
    if (typeof v !== "number" || !Number.isInteger(v) || v < min) {
      throw new Error(`${name} must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
    }
  };
  int("seqLen", o.seqLen, 8);
  int("rows", o.rows, 1);
  int("vocabSize", o.vocabSize, 261);
  int("sampleEvery", o.sampleEvery, 0);
  if (o.imageSize !== undefined) int("imageSize", o.imageSize, 8);
  if (o.maxImages !== undefined) int("maxImages", o.maxImages, 1);
  if (typeof o.data !== "string" || o.data === "") throw new Error("data must be a name or a file");
  if (!o.data.endsWith(".jsonl") && !(DATASET_NAMES as readonly string[]).includes(o.data)) {
    throw new Error(
      `unknown dataset '${o.data}' (expected one of: ${DATASET_NAMES.join(", ")}, or a .jsonl document file)`,
    );
  }
  if (o.textCorpus !== null && !(TEXT_CORPUS_NAMES as readonly string[]).includes(o.textCorpus)) {
    throw new Error(
      `unknown text corpus '${o.textCorpus}' (expected one of: ${TEXT_CORPUS_NAMES.join(", ")}, or none)`,
    );
  }
  // Placeholders for what the tokenizer and the VAE decide; everything else is checked now.
  requestedModel(o, {
    vocab: o.vocabSize + (o.model?.imageCodes ?? 0),
    latentChannels: 1,
    latentSize: requestedFields(o).patchSize,
  });
}

/** Returns the "run" section config.json records for options `o`. */
export function runRecord(o: RunOptions): RunRecord {
  const choice = (from: string | undefined, settings: object | undefined): AutoencoderChoice =>
    from ? { from: resolve(from) } : { train: JSON.parse(JSON.stringify(settings ?? {})) };
  return {
    preset: o.preset,
    textCorpus: o.textCorpus,
    shapesDifficulty: o.shapesDifficulty ?? null,
    imageSize: o.imageSize ?? 32,
    maxImages: o.maxImages ?? null,
    vocabSize: o.vocabSize,
    dataFile: o.data.endsWith(".jsonl") ? resolve(o.data) : null,
    vae: choice(o.vaeFrom, o.vae),
    vqvae: choice(o.vqvaeFrom, o.vqvae),
    sampleEvery: o.sampleEvery,
    sampleCaptions: o.sampleCaptions ?? null,
  };
}

/** What mixer fields added since the first checkpoints meant before they existed. */
const LEGACY_MIXER: Partial<MixerOptions> = { textDocuments: "filler" };

/** Returns the mixer settings a run uses, for a model trained with `diffusionSteps`. */
export function runMixer(o: RunOptions, diffusionSteps: number): MixerOptions {
  return { ...DEFAULT_MIXER, diffusionSteps, ...o.mixer, seqLen: o.seqLen, rows: o.rows };
}

/** One setting whose saved and requested values differ. */
export interface SettingDiff {
  field: string;
  saved: unknown;
  requested: unknown;
}

/**
 * Returns how the run `o` differs from the checkpoint `saved`: `conflicts` change the model,
 * its data or its optimisation (a resume would ignore them), `changes` may differ on resume
 * (steps, checkpoint and sample intervals, sample captions). Fields an older config.json does
 * not record are not compared.
 */
export function compareWithCheckpoint(
  saved: CheckpointConfig,
  o: RunOptions,
): { conflicts: SettingDiff[]; changes: SettingDiff[] } {
  const conflicts: SettingDiff[] = [];
  const changes: SettingDiff[] = [];
  const differs = (a: unknown, b: unknown) => JSON.stringify(a) !== JSON.stringify(b);
  const raw = saved.raw;
  const run = (isObject(raw.run) ? raw.run : {}) as Partial<RunRecord>;
  const want = runRecord(o);
  const add = (list: SettingDiff[], field: string, s: unknown, r: unknown) => {
    if (s !== undefined && differs(s, r)) list.push({ field, saved: s, requested: r });
  };

  const jsonl = o.data.endsWith(".jsonl");
  if (jsonl && typeof run.dataFile === "string")
    add(conflicts, "data", run.dataFile, want.dataFile);
  else add(conflicts, "data", raw.data, o.data);
  add(conflicts, "textCorpus", run.textCorpus, want.textCorpus);
  add(conflicts, "vocabSize", run.vocabSize, want.vocabSize);
  const images = raw.autoencoder !== null;
  if (images) add(conflicts, "imageSize", run.imageSize, want.imageSize);
  if (!jsonl) add(conflicts, "maxImages", run.maxImages, want.maxImages);
  if (o.data === "shapes" && run.shapesDifficulty !== undefined) {
    // No level is the dataset's default level.
    add(
      conflicts,
      "shapesDifficulty",
      run.shapesDifficulty ?? "medium",
      want.shapesDifficulty ?? "medium",
    );
  }

  // The saved file as written, not as validated: a field an older version did not write has
  // its old meaning in the checkpoint, and a default added since is no request to change it.
  if (isObject(raw.model)) {
    const model = requestedFields(o);
    for (const [k, v] of Object.entries(raw.model)) {
      if (!DERIVED_MODEL.has(k))
        add(conflicts, `model.${k}`, v, model[k as keyof TransfusionConfig]);
    }
  }
  if (isObject(raw.mixer)) {
    const mixer = runMixer(o, saved.model.diffusionSteps);
    // Fields added since keep their old meaning in a checkpoint that lacks them.
    const savedMixer = { ...LEGACY_MIXER, ...raw.mixer };
    for (const [k, v] of Object.entries(savedMixer)) {
      const field = k === "seqLen" || k === "rows" ? k : `mixer.${k}`;
      add(conflicts, field, v, mixer[k as keyof MixerOptions]);
    }
  }
  if (isObject(raw.train)) {
    const train = runSettings(o);
    for (const [k, v] of Object.entries(raw.train)) {
      const resumable = RESUMABLE_TRAIN.has(k as keyof TrainSettings);
      const field = k === "steps" ? "steps" : resumable ? k : `train.${k}`;
      add(resumable ? changes : conflicts, field, v, train[k as keyof TrainSettings]);
    }
  }
  if (images) {
    const discrete = saved.model.imageCodes > 0;
    const key = discrete ? "vqvae" : "vae";
    const diff = autoencoderDiff(saved, run[key], want[key], discrete);
    if (diff) conflicts.push({ field: key, ...diff });
  }
  add(changes, "sampleEvery", run.sampleEvery, want.sampleEvery);
  add(changes, "sampleCaptions", run.sampleCaptions, want.sampleCaptions);
  return { conflicts, changes };
}

/**
 * Returns the saved and requested autoencoder choices when they differ, else null. A folder
 * asked for now matches the checkpoint when its weights are the checkpoint's (by fingerprint),
 * whatever the saved choice said, so pointing at the run's own VAE is not a difference.
 */
function autoencoderDiff(
  saved: CheckpointConfig,
  was: AutoencoderChoice | undefined,
  now: AutoencoderChoice,
  discrete: boolean,
): { saved: unknown; requested: unknown } | null {
  const fingerprints = isObject(saved.raw.fingerprints) ? saved.raw.fingerprints : {};
  const recorded = fingerprints[discrete ? VQVAE_WEIGHTS_FILE : VAE_WEIGHTS_FILE];
  if ("from" in now && typeof recorded === "string") {
    const ae = discrete ? loadVqVae(now.from) : loadVae(now.from);
    if (autoencoderFingerprint(ae) === recorded) return null;
    return { saved: was ?? "the checkpoint's own", requested: `${now.from} (other weights)` };
  }
  if (was === undefined || JSON.stringify(was) === JSON.stringify(now)) return null;
  return { saved: was, requested: now };
}

/**
 * Returns the error a refused resume throws: every differing field with its saved and
 * requested values, and the two ways out.
 */
export function resumeError(out: string, checkpoint: string, conflicts: SettingDiff[]): Error {
  const lines = conflicts.map(
    (d) =>
      `  ${d.field}: saved ${JSON.stringify(d.saved)}, requested ${JSON.stringify(d.requested)}`,
  );
  return new Error(
    `${out}: cannot resume: the checkpoint in ${checkpoint} was made with other settings than this run asks for:\n${lines.join("\n")}\n` +
      "Start over in this folder with --no-resume (library: resume: false), or train into another folder with another --out.",
  );
}

/** Returns the stage message of a resume with allowed changes ("resuming with steps 500 → 800"). */
export function resumeChangesMessage(changes: SettingDiff[]): string {
  const show = (v: unknown) => (typeof v === "number" ? String(v) : JSON.stringify(v));
  return `resuming with ${changes.map((c) => `${c.field} ${show(c.saved)} → ${show(c.requested)}`).join(", ")}`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Returns nothing; throws when the longest training document does not fit a sequence of
 * seqLen positions, naming it and the length needed. A document takes `textLength` positions
 * per text part, `perImage` per image and one that ends it. With `estimate` (before a
 * tokenizer exists) text parts count one token each, a lower bound, so a document too long
 * even then fails before anything is trained.
 */
export function checkFits<T>(
  o: RunOptions,
  docs: ReadonlyArray<ReadonlyArray<{ text: T } | { image: number }>>,
  perImage: number,
  textLength: (text: T) => number,
  estimate: boolean,
): void {
  let worst = -1;
  let need = 0;
  docs.forEach((d, i) => {
    const len = 1 + d.reduce((n, p) => n + ("text" in p ? textLength(p.text) : perImage), 0);
    if (len > need) [worst, need] = [i, len];
  });
  if (worst < 0 || need <= o.seqLen) return;
  const what = o.data.endsWith(".jsonl") ? "document" : "caption–image pair";
  const text = estimate ? "each text part at least one token" : "text its tokens";
  throw new Error(
    `${o.data}: ${what} ${worst + 1} needs ${estimate ? "at least " : ""}${need} positions, more than seqLen ${o.seqLen} ` +
      `(an image takes ${perImage}: its patches plus BOI and EOI; ${text}; one more ends the document); ` +
      `raise seqLen (--seq-len) to ${need} or more`,
  );
}
