/**
 * Checkpoints: a folder with config.json, model.safetensors (EMA weights, for sampling),
 * train_state.safetensors (raw weights, AdamW moments, step), tokenizer.json and the image
 * autoencoder (vae.safetensors, or vqvae.safetensors for the discrete-token model; none for a
 * model trained on text only, recorded as config.json's "autoencoder": null). config.json
 * also records "fingerprints" of the tokenizer and the autoencoder, checked on every load, so
 * files from different runs are never mixed; checkpoints older than the field load unchecked.
 * Every float tensor loaded is checked for NaN and ±Infinity.
 *
 * The folder is replaced as a whole: everything is written to `DIR.tmp`, then DIR is renamed
 * to `DIR.old`, `DIR.tmp` to DIR, and `DIR.old` removed. A crash or a full disk at any point
 * leaves a complete checkpoint under DIR or (between the two renames) under `DIR.old`, which
 * `resolveCheckpointDir` finds.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Tokenizer } from "../data/tokenizer.js";
import { isDiscrete, type TransfusionConfig, validateConfig } from "../model/config.js";
import type { Vae } from "../model/vae.js";
import { VqVae } from "../model/vqvae.js";
import type { Module } from "../nn/module.js";
import { writeFileAtomic } from "../tensor/atomic-write.js";
import type { AdamW } from "../tensor/optim.js";
import { readSafetensorsFile, type StFile, writeSafetensorsFile } from "../tensor/safetensors.js";
import {
  autoencoderFingerprint,
  checkFingerprint,
  checkFiniteLoaded,
  tokenizerFingerprint,
} from "./integrity.js";
import { loadVae, VAE_WEIGHTS_FILE } from "./vae-files.js";
import { loadVqVae, VQVAE_WEIGHTS_FILE } from "./vqvae-files.js";

export const CHECKPOINT_FORMAT = "transfusion-checkpoint";
export const CHECKPOINT_VERSION = 1;
export const CONFIG_FILE = "config.json";
export const MODEL_FILE = "model.safetensors";
export const TRAIN_STATE_FILE = "train_state.safetensors";
export const TOKENIZER_FILE = "tokenizer.json";

/** Returns the folder holding the latest complete checkpoint at `dir`, or null if none. */
export function resolveCheckpointDir(dir: string): string | null {
  // model.safetensors is written by every checkpoint (config.json only by the pipeline).
  if (existsSync(join(dir, MODEL_FILE))) return dir;
  if (existsSync(join(`${dir}.old`, MODEL_FILE))) return `${dir}.old`;
  return null;
}

/**
 * Writes a checkpoint folder atomically: `write(tmpDir)` fills a fresh temporary folder, then
 * it replaces `dir`. If `write` throws, `dir` is untouched and the temporary folder removed.
 */
export function replaceFolder(dir: string, write: (tmpDir: string) => void): void {
  mkdirSync(dirname(dir), { recursive: true });
  const tmp = checkpointTempDir(dir);
  const old = `${dir}.old`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    mkdirSync(tmp, { recursive: true });
    write(tmp);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw new Error(`cannot write checkpoint ${dir}: ${(err as Error).message}`, { cause: err });
  }
  // A DIR.old left by an earlier crash is only needed while DIR itself is missing.
  if (existsSync(dir)) {
    rmSync(old, { recursive: true, force: true });
    renameSync(dir, old);
  }
  renameSync(tmp, dir);
  rmSync(old, { recursive: true, force: true });
}

/** Returns the temporary folder a checkpoint at `dir` is written to before it replaces `dir`. */
export function checkpointTempDir(dir: string): string {
  return `${dir}.tmp`;
}

/** Returns the module's parameters as safetensors input, names prefixed. */
export function moduleTensors(
  m: Module,
  prefix = "",
  data?: Map<string, Float32Array>,
): Record<string, { shape: number[]; data: Float32Array }> {
  const out: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [name, t] of m.namedParameters()) {
    out[prefix + name] = { shape: [...t.shape], data: data?.get(name) ?? t.f32 };
  }
  return out;
}

/**
 * Copies tensors named like the module's parameters (with `prefix`) into it, or into `into`
 * (by parameter name) when given; checks every shape, float type and value (NaN and ±Infinity
 * are refused). Errors name `source` and the tensor.
 */
export function loadModuleTensors(
  m: Module,
  file: StFile,
  source: string,
  prefix = "",
  into?: Map<string, Float32Array>,
): void {
  for (const [name, t] of m.namedParameters()) {
    const data = floatTensor(file, source, prefix + name, t.shape);
    (into?.get(name) ?? t.f32).set(data);
  }
}

/**
 * Returns the data of tensor `key` in `file` after checking that it exists with `shape`, is
 * float and holds only finite values; errors name `source` and the tensor.
 */
function floatTensor(
  file: StFile,
  source: string,
  key: string,
  shape: readonly number[],
): Float32Array {
  const e = file.tensors[key];
  if (!e) throw new Error(`${source}: missing tensor "${key}"`);
  if (e.shape.join(",") !== shape.join(",")) {
    throw new Error(
      `${source}: tensor "${key}" has shape [${e.shape}], the model expects [${shape}]`,
    );
  }
  if (!(e.data instanceof Float32Array)) throw new Error(`${source}: tensor "${key}" is not float`);
  checkFiniteLoaded(e.data, source, key);
  return e.data;
}

/** Saves AdamW moments and raw weights into train-state tensors. */
export function optimizerTensors(
  model: Module,
  opt: AdamW,
): Record<string, { shape: number[]; data: Float32Array }> {
  const out = moduleTensors(model, "param.");
  const index = new Map(opt.entries.map((e, i) => [e.param, i]));
  for (const [name, t] of model.namedParameters()) {
    const i = index.get(t);
    if (i === undefined) continue;
    out[`adam_m.${name}`] = { shape: [...t.shape], data: opt.m[i]! };
    out[`adam_v.${name}`] = { shape: [...t.shape], data: opt.v[i]! };
  }
  return out;
}

/** Restores raw weights and AdamW moments from a train-state file. */
export function loadOptimizerTensors(
  model: Module,
  opt: AdamW,
  file: StFile,
  source: string,
): void {
  loadModuleTensors(model, file, source, "param.");
  const index = new Map(opt.entries.map((e, i) => [e.param, i]));
  for (const [name, t] of model.namedParameters()) {
    const i = index.get(t);
    if (i === undefined) continue;
    opt.m[i]!.set(floatTensor(file, source, `adam_m.${name}`, t.shape));
    opt.v[i]!.set(floatTensor(file, source, `adam_v.${name}`, t.shape));
  }
}

/** Writes a JSON file atomically. */
export function writeJson(path: string, value: unknown): void {
  writeFileAtomic(path, [new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`)]);
}

/** Returns parsed JSON from `path`, with errors naming the file. */
export function readJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(
      `${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${path}: invalid JSON (${(err as Error).message})`);
  }
}

/** A checkpoint's config.json, read and checked: the raw object and its validated model config. */
export interface CheckpointConfig {
  path: string;
  raw: Record<string, unknown>;
  model: TransfusionConfig;
}

/**
 * Returns the config.json of the checkpoint folder `dir`, checked: format, version and the
 * model config (through validateConfig). Errors name the file and the field.
 */
export function readCheckpointConfig(dir: string): CheckpointConfig {
  const path = join(dir, CONFIG_FILE);
  const raw = readJson(path);
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new Error(`${path}: expected a JSON object`);
  }
  const o = raw as Record<string, unknown>;
  if (o.format !== CHECKPOINT_FORMAT)
    throw new Error(`${path}: field "format" must be "${CHECKPOINT_FORMAT}"`);
  if (o.version !== CHECKPOINT_VERSION) {
    throw new Error(
      `${path}: checkpoint version ${String(o.version)} is not supported (this build reads ${CHECKPOINT_VERSION})`,
    );
  }
  return { path, raw: o, model: validateConfig(o.model, `${path}: model`) };
}

export { readSafetensorsFile, writeSafetensorsFile };

/**
 * Returns the image autoencoder of the checkpoint folder `dir` whose config.json is `cfg`: the
 * VQ tokenizer of a discrete-token model, else the KL-VAE, or null for a text-only run
 * (config.json's "autoencoder" is null). Checkpoints made before the field have one by kind.
 */
export function loadCheckpointAutoencoder(dir: string, cfg: CheckpointConfig): Vae | VqVae | null {
  const field = cfg.raw.autoencoder;
  const want = isDiscrete(cfg.model) ? VQVAE_WEIGHTS_FILE : VAE_WEIGHTS_FILE;
  if (field === null) return null;
  if (field !== undefined && field !== want) {
    throw new Error(
      `${cfg.path}: field "autoencoder" must be "${want}" for this model (or null for text only), got ${JSON.stringify(field)}`,
    );
  }
  return want === VQVAE_WEIGHTS_FILE ? loadVqVae(dir) : loadVae(dir);
}

/**
 * Returns nothing; throws naming the file when the tokenizer or the autoencoder of a checkpoint
 * differs from the fingerprint its config.json records (older checkpoints record none).
 */
export function checkCheckpointFingerprints(
  dir: string,
  cfg: CheckpointConfig,
  tokenizer: Tokenizer,
  autoencoder: Vae | VqVae | null,
): void {
  const fp = cfg.raw.fingerprints;
  if (fp === undefined) return;
  if (typeof fp !== "object" || fp === null || Array.isArray(fp)) {
    throw new Error(`${cfg.path}: field "fingerprints" must be an object`);
  }
  const recorded = fp as Record<string, unknown>;
  const tokFile = join(dir, TOKENIZER_FILE);
  checkFingerprint(tokFile, cfg.path, recorded[TOKENIZER_FILE], tokenizerFingerprint(tokenizer));
  if (autoencoder) {
    const name = autoencoder instanceof VqVae ? VQVAE_WEIGHTS_FILE : VAE_WEIGHTS_FILE;
    checkFingerprint(
      join(dir, name),
      cfg.path,
      recorded[name],
      autoencoderFingerprint(autoencoder),
    );
  }
}

/** Returns the "fingerprints" field config.json records for a checkpoint's tokenizer and VAE. */
export function checkpointFingerprints(
  tokenizer: Tokenizer,
  autoencoder: Vae | VqVae | null,
): Record<string, string> {
  const out: Record<string, string> = { [TOKENIZER_FILE]: tokenizerFingerprint(tokenizer) };
  if (autoencoder) {
    const name = autoencoder instanceof VqVae ? VQVAE_WEIGHTS_FILE : VAE_WEIGHTS_FILE;
    out[name] = autoencoderFingerprint(autoencoder);
  }
  return out;
}
