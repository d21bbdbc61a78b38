/**
 * The content of a module's weights file, without files (this runs in a browser too): the
 * header metadata that identifies and configures it, and the parameters copied in with every
 * shape, type and value checked. `./module-files.ts` reads and writes the files in Node.
 */
import type { Module } from "../nn/module.js";
import type { StFile } from "../tensor/safetensors-format.js";
import { checkFiniteLoaded } from "./integrity.js";

/**
 * Returns the tensors of the parsed weights file `st` (read from `file`, which errors name), a
 * reader of its metadata fields, and its config: the metadata field "config", a JSON object
 * that must hold every key of `requiredKeys` (a default filled in here could silently
 * mismatch the weights). Checks the "format" field against `format`.
 */
export function parseModuleFile(
  st: StFile,
  file: string,
  format: string,
  requiredKeys: readonly string[],
): { tensors: StFile["tensors"]; field: (key: string) => string; config: object } {
  const { tensors, metadata } = st;
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
