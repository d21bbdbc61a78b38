/**
 * VQ tokenizer files: `vqvae.safetensors` (weights including the codebook, with the config in
 * its metadata, so the file alone is enough to load) and `vqvae.json` (the same config plus
 * notes such as how it was trained, for people and tools).
 */
import { join } from "node:path";
import type { VqVae } from "../model/vqvae.js";
import { readSafetensorsFile } from "../tensor/safetensors.js";
import { saveModuleFiles } from "./module-files.js";
import {
  VQVAE_FORMAT,
  VQVAE_JSON_FILE,
  VQVAE_WEIGHTS_FILE,
  vqvaeFromSafetensors,
} from "./vqvae-format.js";

export { VQVAE_JSON_FILE, VQVAE_WEIGHTS_FILE, vqvaeFromSafetensors };

/**
 * Returns the paths written, both atomically: `dir/vqvae.safetensors` (parameters by their
 * dotted names, the config in the header metadata) and `dir/vqvae.json` (format, config,
 * parameter count and `info`).
 */
export function saveVqVae(vq: VqVae, dir: string, info: Record<string, unknown> = {}): string[] {
  const metadata = { format: VQVAE_FORMAT, config: JSON.stringify(vq.config) };
  const doc = {
    format: VQVAE_FORMAT,
    config: vq.config,
    parameters: vq.parameterCount(),
    ...info,
  };
  const files = { weights: VQVAE_WEIGHTS_FILE, json: VQVAE_JSON_FILE };
  return saveModuleFiles(vq, dir, files, metadata, doc);
}

/**
 * Returns the VQ tokenizer stored in `dir` (see saveVqVae). The config must list every field
 * and every tensor must be present with the shape it implies, nothing extra; errors name the
 * file and the field or tensor.
 */
export function loadVqVae(dir: string): VqVae {
  const file = join(dir, VQVAE_WEIGHTS_FILE);
  return vqvaeFromSafetensors(readSafetensorsFile(file), file);
}
