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
import { checkFiniteLoaded, checkFiniteSaving } from "./integrity.js";

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
 * config: the metadata field "config", a JSON object that must hold every key of
 * `requiredKeys` (a default filled in here could silently mismatch the weights). Checks the
 * "format" field against `format`. Errors name the file and the field.
 */
export function readModuleFile(
  file: string,
  format: string,
  requiredKeys: readonly string[],
): { tensors: StFile["tensors"]; field: (key: string) => string; config: object } {
  const { tensors, metadata } = readSafetensorsFile(file);
  const field = (key: string): string => {
    const v = metadata[key];
    if (v === undefined) throw new Error(`${file}: missing metadata field "__metadata__.${key}"`);
    return v;
  };
  if (field("format") !== format) {
    throw new Error(
      `${file}: metadata field "__metadata__.format" is "${field("format")}", expected "${format}"`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(field("config"));
  } catch (err) {
    throw new Error(
      `${file}: metadata field "__metadata__.config" is not JSON: ${(err as Error).message}`,
    );
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new Error(`${file}: metadata field "__metadata__.config" must be a JSON object`);
  }
  for (const key of requiredKeys) {
    if (!(key in parsed)) throw new Error(`${file}: __metadata__.config: missing field "${key}"`);
  }
  return { tensors, field, config: parsed };
}

/**
 * Copies `tensors` into m's parameters. Every parameter must be present with its shape, a
 * float type and finite values, and nothing extra; errors name the file and the tensor.
 */
export function loadParameters(m: Module, tensors: StFile["tensors"], file: string): void {
  const expected = new Set<string>();
  for (const [name, t] of m.namedParameters()) {
    expected.add(name);
    const e = tensors[name];
    if (!e) throw new Error(`${file}: missing tensor "${name}" (shape [${t.shape.join(", ")}])`);
    if (e.dtype !== "F32" && e.dtype !== "F16" && e.dtype !== "BF16" && e.dtype !== "F64") {
      throw new Error(`${file}: tensor "${name}" has dtype ${e.dtype}, expected a float type`);
    }
    if (e.shape.join() !== t.shape.join()) {
      throw new Error(
        `${file}: tensor "${name}" has shape [${e.shape.join(", ")}], expected [${t.shape.join(", ")}] for this config`,
      );
    }
    checkFiniteLoaded(e.data as Float32Array, file, name);
    t.f32.set(e.data as Float32Array);
  }
  for (const name of Object.keys(tensors)) {
    if (!expected.has(name))
      throw new Error(`${file}: unexpected tensor "${name}" (not in this config)`);
  }
}
