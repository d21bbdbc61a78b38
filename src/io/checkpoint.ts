/**
 * Checkpoints: a folder with config.json, model.safetensors (EMA weights, for sampling),
 * train_state.safetensors (raw weights, AdamW moments, step), tokenizer.json and the image
 * autoencoder (vae.safetensors, or vqvae.safetensors for the discrete-token model; none for a
 * model trained on text only, recorded as config.json's "autoencoder": null). config.json
 * also records "fingerprints" of the tokenizer and the autoencoder, checked on every load, so
 * files from different runs are never mixed; checkpoints older than the field load unchecked.
 * Every float tensor loaded is checked for NaN and ±Infinity. What is checked lives in
 * `./checkpoint-format.ts` (no files, so a web page checks the same); this module adds the
 * folder.
 *
 * The folder is replaced as a whole: everything is written to `DIR.tmp`, then DIR is renamed
 * to `DIR.old`, `DIR.tmp` to DIR, and `DIR.old` removed. A crash or a full disk at any point
 * leaves a complete checkpoint under DIR or (between the two renames) under `DIR.old`, which
 * `resolveCheckpointDir` finds.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import type { BpeTokenizer } from "../data/tokenizer-core.js";
import type { Vae } from "../model/vae.js";
import type { VqVae } from "../model/vqvae.js";
import type { Module } from "../nn/module.js";
import { writeFileAtomic } from "../tensor/atomic-write.js";
import type { AdamW } from "../tensor/optim.js";
import { readSafetensorsFile, type StFile, writeSafetensorsFile } from "../tensor/safetensors.js";
import {
  type CheckpointConfig,
  CONFIG_FILE,
  checkFingerprints,
  checkpointAutoencoderFile,
  floatTensor,
  loadModuleTensors,
  MODEL_FILE,
  parseCheckpointConfig,
  parseJson,
  pipelineFiles,
  TOKENIZER_FILE,
} from "./checkpoint-format.js";
import { loadVae } from "./vae-files.js";
import { loadVqVae, VQVAE_WEIGHTS_FILE } from "./vqvae-files.js";

export {
  CHECKPOINT_FORMAT,
  CHECKPOINT_VERSION,
  type CheckpointConfig,
  CONFIG_FILE,
  checkpointFingerprints,
  loadModuleTensors,
  MODEL_FILE,
  pipelineFiles,
  TOKENIZER_FILE,
  TRAIN_STATE_FILE,
} from "./checkpoint-format.js";

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
    out[`adam_m.${name}`] = { shape: [...t.shape], data: opt.m[i]!.f32 };
    out[`adam_v.${name}`] = { shape: [...t.shape], data: opt.v[i]!.f32 };
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
    opt.m[i]!.f32.set(floatTensor(file, source, `adam_m.${name}`, t.shape));
    opt.v[i]!.f32.set(floatTensor(file, source, `adam_v.${name}`, t.shape));
  }
}

/** Writes a JSON file atomically. */
export function writeJson(path: string, value: unknown): void {
  writeFileAtomic(path, [new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`)]);
}

/** Returns parsed JSON from `path`, with errors naming the file. */
export function readJson(path: string): unknown {
  return parseJson(readText(path, "cannot read"), path);
}

/**
 * Returns the config.json of the checkpoint folder `dir`, checked: format, version and the
 * model config (through validateConfig). Errors name the file and the field.
 */
export function readCheckpointConfig(dir: string): CheckpointConfig {
  const path = join(dir, CONFIG_FILE);
  return parseCheckpointConfig(readJson(path), path);
}

export { readSafetensorsFile, writeSafetensorsFile };

/**
 * Returns the image autoencoder of the checkpoint folder `dir` whose config.json is `cfg`: the
 * VQ tokenizer of a discrete-token model, else the KL-VAE, or null for a text-only run
 * (config.json's "autoencoder" is null). Checkpoints made before the field have one by kind.
 */
export function loadCheckpointAutoencoder(dir: string, cfg: CheckpointConfig): Vae | VqVae | null {
  const file = checkpointAutoencoderFile(cfg);
  if (file === null) return null;
  return file === VQVAE_WEIGHTS_FILE ? loadVqVae(dir) : loadVae(dir);
}

/**
 * Returns nothing; throws naming the file when the tokenizer or the autoencoder of a checkpoint
 * differs from the fingerprint its config.json records (older checkpoints record none).
 */
export function checkCheckpointFingerprints(
  dir: string,
  cfg: CheckpointConfig,
  tokenizer: BpeTokenizer,
  autoencoder: Vae | VqVae | null,
): void {
  checkFingerprints(cfg, tokenizer, autoencoder, (name) => join(dir, name));
}

/**
 * Returns the files a pipeline needs from the checkpoint folder `dir` (see `pipelineFiles`):
 * config.json and tokenizer.json as text, the weights as bytes. Errors name the file.
 */
export function readPipelineFiles(dir: string): Record<string, Uint8Array | string> {
  const configPath = join(dir, CONFIG_FILE);
  const configText = readText(configPath, "cannot read");
  const cfg = parseCheckpointConfig(parseJson(configText, configPath), configPath);
  const files: Record<string, Uint8Array | string> = { [CONFIG_FILE]: configText };
  for (const name of pipelineFiles(cfg)) {
    if (name === CONFIG_FILE) continue;
    const path = join(dir, name);
    if (name === TOKENIZER_FILE) {
      files[name] = readText(path, "cannot read tokenizer");
      continue;
    }
    try {
      files[name] = readFileSync(path);
    } catch (err) {
      throw new Error(`${path}: cannot read safetensors file: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
  return files;
}

/** Returns the UTF-8 text of the file at `path`; errors read "`path`: `what` (reason)". */
function readText(path: string, what: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(
      `${path}: ${what} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
}
