/**
 * A module stored as a pair of files, the layout of the image autoencoders: NAME.safetensors
 * (parameters by their dotted names; format and config in the header metadata, so the file
 * alone is enough to load) and NAME.json (the same facts plus notes, for people and tools).
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Module } from "../nn/module.js";
import { writeFileAtomic } from "../tensor/atomic-write.js";
import { readSafetensorsFile, type StFile, writeSafetensorsFile } from "../tensor/safetensors.js";
import { checkFiniteSaving } from "./integrity.js";
import { parseModuleFile } from "./module-format.js";

export { loadParameters, parseModuleFile } from "./module-format.js";

/**
 * Returns the paths written, both atomically: `dir/weightsFile` (m's parameters, `metadata` in
 * the header) and `dir/jsonFile` (`doc`, pretty-printed). Refuses, before writing anything,
 * a module holding NaN or ±Infinity: such a file would load and then decode noise.
 */
export function saveModuleFiles(
  m: Module,
  dir: string,
  files: { weights: string; json: string },
  metadata: Record<string, string>,
  doc: Record<string, unknown>,
): string[] {
  const weights = join(dir, files.weights);
  checkFiniteSaving(
    m.namedParameters().map(([name, t]) => [name, t.f32]),
    weights,
  );
  mkdirSync(dir, { recursive: true });
  const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [name, t] of m.namedParameters()) tensors[name] = { shape: [...t.shape], data: t.f32 };
  writeSafetensorsFile(weights, tensors, metadata);
  const json = join(dir, files.json);
  writeFileAtomic(json, [new TextEncoder().encode(`${JSON.stringify(doc, null, 2)}\n`)]);
  return [weights, json];
}

/**
 * Returns the tensors of the weights file `file`, a reader of its metadata fields, and its
 * config, checked as `parseModuleFile` does. Errors name the file and the field.
 */
export function readModuleFile(
  file: string,
  format: string,
  requiredKeys: readonly string[],
): { tensors: StFile["tensors"]; field: (key: string) => string; config: object } {
  return parseModuleFile(readSafetensorsFile(file), file, format, requiredKeys);
}
