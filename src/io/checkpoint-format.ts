/**
 * A checkpoint's content without its folder: the file names, config.json parsed and checked,
 * which files a checkpoint needs, the model weights copied in with every tensor checked, and
 * the fingerprints that tie the tokenizer and autoencoder to their config. No files are read
 * here, so a web page that fetched a checkpoint runs the very same checks as `transfusion` on
 * a folder (`./checkpoint.ts` adds the folder).
 */
import type { BpeTokenizer } from "../data/tokenizer-core.js";
import { isDiscrete, type TransfusionConfig, validateConfig } from "../model/config.js";
import type { Vae } from "../model/vae.js";
import { VqVae } from "../model/vqvae.js";
import type { Module } from "../nn/module.js";
import type { StFile } from "../tensor/safetensors-format.js";
import {
  autoencoderFingerprint,
  checkFingerprint,
  checkFiniteLoaded,
  tokenizerFingerprint,
} from "./integrity.js";
import { VAE_WEIGHTS_FILE } from "./vae-format.js";
import { VQVAE_WEIGHTS_FILE } from "./vqvae-format.js";

export const CHECKPOINT_FORMAT = "transfusion-checkpoint";
export const CHECKPOINT_VERSION = 1;
export const CONFIG_FILE = "config.json";
export const MODEL_FILE = "model.safetensors";
export const TRAIN_STATE_FILE = "train_state.safetensors";
export const TOKENIZER_FILE = "tokenizer.json";

/** A checkpoint's config.json, read and checked: the raw object and its validated model config. */
export interface CheckpointConfig {
  path: string;
  raw: Record<string, unknown>;
  model: TransfusionConfig;
}

/** Returns the value of JSON `text`; errors name `path`. */
export function parseJson(text: string, path: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${path}: invalid JSON (${(err as Error).message})`);
  }
}

/**
 * Returns the parsed config.json `raw` (read from `path`, which errors name) checked: format,
 * version and the model config (through validateConfig).
 */
export function parseCheckpointConfig(raw: unknown, path: string): CheckpointConfig {
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

/**
 * Returns the weights file of the checkpoint's image autoencoder: the VQ tokenizer's for a
 * discrete-token model, else the KL-VAE's, or null for a text-only run (config.json's
 * "autoencoder" is null). Checkpoints made before the field have one by kind.
 */
export function checkpointAutoencoderFile(cfg: CheckpointConfig): string | null {
  const field = cfg.raw.autoencoder;
  const want = isDiscrete(cfg.model) ? VQVAE_WEIGHTS_FILE : VAE_WEIGHTS_FILE;
  if (field === null) return null;
  if (field !== undefined && field !== want) {
    throw new Error(
      `${cfg.path}: field "autoencoder" must be "${want}" for this model (or null for text only), got ${JSON.stringify(field)}`,
    );
  }
  return want;
}

/**
 * Returns the files a pipeline reads from a checkpoint, in the order they are checked:
 * config.json, tokenizer.json, the autoencoder's weights (if any) and model.safetensors.
 */
export function pipelineFiles(cfg: CheckpointConfig): string[] {
  const ae = checkpointAutoencoderFile(cfg);
  return [CONFIG_FILE, TOKENIZER_FILE, ...(ae ? [ae] : []), MODEL_FILE];
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
export function floatTensor(
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

/**
 * Returns nothing; throws naming the file when the tokenizer or the autoencoder of a checkpoint
 * differs from the fingerprint its config.json records (older checkpoints record none).
 * `where(name)` names a file of the checkpoint in messages (its path or URL).
 */
export function checkFingerprints(
  cfg: CheckpointConfig,
  tokenizer: BpeTokenizer,
  autoencoder: Vae | VqVae | null,
  where: (name: string) => string,
): void {
  const fp = cfg.raw.fingerprints;
  if (fp === undefined) return;
  if (typeof fp !== "object" || fp === null || Array.isArray(fp)) {
    throw new Error(`${cfg.path}: field "fingerprints" must be an object`);
  }
  const recorded = fp as Record<string, unknown>;
  checkFingerprint(
    where(TOKENIZER_FILE),
    cfg.path,
    recorded[TOKENIZER_FILE],
    tokenizerFingerprint(tokenizer),
  );
  if (autoencoder) {
    const name = autoencoder instanceof VqVae ? VQVAE_WEIGHTS_FILE : VAE_WEIGHTS_FILE;
    checkFingerprint(where(name), cfg.path, recorded[name], autoencoderFingerprint(autoencoder));
  }
}

/** Returns the "fingerprints" field config.json records for a checkpoint's tokenizer and VAE. */
export function checkpointFingerprints(
  tokenizer: BpeTokenizer,
  autoencoder: Vae | VqVae | null,
): Record<string, string> {
  const out: Record<string, string> = { [TOKENIZER_FILE]: tokenizerFingerprint(tokenizer) };
  if (autoencoder) {
    const name = autoencoder instanceof VqVae ? VQVAE_WEIGHTS_FILE : VAE_WEIGHTS_FILE;
    out[name] = autoencoderFingerprint(autoencoder);
  }
  return out;
}
