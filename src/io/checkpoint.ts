/**
 * Checkpoints: a folder with config.json, model.safetensors (EMA weights, for sampling),
 * train_state.safetensors (raw weights, AdamW moments, step), tokenizer.json and the VAE.
 *
 * The folder is replaced as a whole: everything is written to `DIR.tmp`, then DIR is renamed
 * to `DIR.old`, `DIR.tmp` to DIR, and `DIR.old` removed. A crash or a full disk at any point
 * leaves a complete checkpoint under DIR or (between the two renames) under `DIR.old`, which
 * `resolveCheckpointDir` finds.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Module } from "../nn/module.js";
import { writeFileAtomic } from "../tensor/atomic-write.js";
import type { AdamW } from "../tensor/optim.js";
import { readSafetensorsFile, type StFile, writeSafetensorsFile } from "../tensor/safetensors.js";

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
  const tmp = `${dir}.tmp`;
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

/** Copies tensors named like the module's parameters (with `prefix`) into it; checks every shape. */
export function loadModuleTensors(m: Module, file: StFile, source: string, prefix = ""): void {
  for (const [name, t] of m.namedParameters()) {
    const e = file.tensors[prefix + name];
    if (!e) throw new Error(`${source}: missing tensor "${prefix + name}"`);
    if (e.shape.join(",") !== t.shape.join(",")) {
      throw new Error(
        `${source}: tensor "${prefix + name}" has shape [${e.shape}], the model expects [${t.shape}]`,
      );
    }
    if (!(e.data instanceof Float32Array))
      throw new Error(`${source}: tensor "${prefix + name}" is not float`);
    t.f32.set(e.data);
  }
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
    for (const [key, arr] of [
      [`adam_m.${name}`, opt.m[i]!],
      [`adam_v.${name}`, opt.v[i]!],
    ] as const) {
      const e = file.tensors[key];
      if (!e || !(e.data instanceof Float32Array) || e.data.length !== arr.length) {
        throw new Error(`${source}: missing or mis-shaped tensor "${key}"`);
      }
      arr.set(e.data);
    }
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

export { readSafetensorsFile, writeSafetensorsFile };
