/**
 * VAE files: `vae.safetensors` (weights, with config and latent factors in its metadata, so
 * the file alone is enough to load) and `vae.json` (the same facts for people and tools).
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { Vae, type VaeConfig, vaeConfig } from "../model/vae.js";
import { writeFileAtomic } from "../tensor/atomic-write.js";
import { Rng } from "../tensor/rng.js";
import { readSafetensorsFile, writeSafetensorsFile } from "../tensor/safetensors.js";

/** File names inside a VAE folder. */
export const VAE_WEIGHTS_FILE = "vae.safetensors";
export const VAE_JSON_FILE = "vae.json";
const VAE_FORMAT = "transfusion-vae/1";

/**
 * Returns the paths written: `dir/vae.safetensors` (parameters by their dotted names; config,
 * scaling and shift factors in the header metadata, so the file alone is enough to load) and
 * `dir/vae.json` (the same facts plus `info`, for people and tools). Both written atomically.
 */
export function saveVae(vae: Vae, dir: string, info: Record<string, unknown> = {}): string[] {
  mkdirSync(dir, { recursive: true });
  const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [name, t] of vae.namedParameters())
    tensors[name] = { shape: [...t.shape], data: t.f32 };
  const weights = join(dir, VAE_WEIGHTS_FILE);
  writeSafetensorsFile(weights, tensors, {
    format: VAE_FORMAT,
    config: JSON.stringify(vae.config),
    scaling_factor: String(vae.scalingFactor),
    shift_factor: String(vae.shiftFactor),
  });
  const json = join(dir, VAE_JSON_FILE);
  const doc = {
    format: VAE_FORMAT,
    config: vae.config,
    scalingFactor: vae.scalingFactor,
    shiftFactor: vae.shiftFactor,
    parameters: vae.parameterCount(),
    ...info,
  };
  writeFileAtomic(json, [new TextEncoder().encode(`${JSON.stringify(doc, null, 2)}\n`)]);
  return [weights, json];
}

/**
 * Returns the VAE stored in `dir` (see saveVae). Every tensor must be present with the shape
 * the config implies, and nothing extra; errors name the file and the field or tensor.
 */
export function loadVae(dir: string): Vae {
  const file = join(dir, VAE_WEIGHTS_FILE);
  const { tensors, metadata } = readSafetensorsFile(file);
  const field = (key: string): string => {
    const v = metadata[key];
    if (v === undefined) throw new Error(`${file}: missing metadata field "__metadata__.${key}"`);
    return v;
  };
  if (field("format") !== VAE_FORMAT) {
    throw new Error(
      `${file}: metadata field "__metadata__.format" is "${field("format")}", expected "${VAE_FORMAT}"`,
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
  // Every field must be stored: a default filled in here could silently mismatch the weights.
  for (const key of Object.keys(vaeConfig())) {
    if (!(key in parsed)) throw new Error(`${file}: __metadata__.config: missing field "${key}"`);
  }
  const config = vaeConfig(parsed as Partial<VaeConfig>, `${file}: __metadata__.config`);
  const factor = (key: string, positive: boolean): number => {
    const v = Number(field(key));
    if (!Number.isFinite(v) || (positive && v <= 0)) {
      throw new Error(
        `${file}: metadata field "__metadata__.${key}" must be a finite${positive ? " positive" : ""} number, got "${field(key)}"`,
      );
    }
    return v;
  };
  const vae = new Vae(config, new Rng(0));
  vae.scalingFactor = factor("scaling_factor", true);
  vae.shiftFactor = factor("shift_factor", false);
  const expected = new Set<string>();
  for (const [name, t] of vae.namedParameters()) {
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
    t.f32.set(e.data as Float32Array);
  }
  for (const name of Object.keys(tensors)) {
    if (!expected.has(name))
      throw new Error(`${file}: unexpected tensor "${name}" (not in this config)`);
  }
  return vae;
}
