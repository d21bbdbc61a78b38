/**
 * VAE files: `vae.safetensors` (weights, with config and latent factors in its metadata, so
 * the file alone is enough to load) and `vae.json` (the same facts for people and tools).
 */
import { join } from "node:path";
import type { Vae } from "../model/vae.js";
import { readSafetensorsFile } from "../tensor/safetensors.js";
import { saveModuleFiles } from "./module-files.js";
import { VAE_FORMAT, VAE_JSON_FILE, VAE_WEIGHTS_FILE, vaeFromSafetensors } from "./vae-format.js";

export { VAE_JSON_FILE, VAE_WEIGHTS_FILE, vaeFromSafetensors };

/**
 * Returns the paths written: `dir/vae.safetensors` (parameters by their dotted names; config,
 * scaling and shift factors in the header metadata, so the file alone is enough to load) and
 * `dir/vae.json` (the same facts plus `info`, for people and tools). Both written atomically.
 */
export function saveVae(vae: Vae, dir: string, info: Record<string, unknown> = {}): string[] {
  // loadVae refuses these, so a file holding them could never be read back.
  if (!(Number.isFinite(vae.scalingFactor) && vae.scalingFactor > 0)) {
    throw new Error(
      `refusing to save ${join(dir, VAE_WEIGHTS_FILE)}: scaling factor ${vae.scalingFactor} is not a finite positive number`,
    );
  }
  if (!Number.isFinite(vae.shiftFactor)) {
    throw new Error(
      `refusing to save ${join(dir, VAE_WEIGHTS_FILE)}: shift factor ${vae.shiftFactor} is not finite`,
    );
  }
  const metadata = {
    format: VAE_FORMAT,
    config: JSON.stringify(vae.config),
    scaling_factor: String(vae.scalingFactor),
    shift_factor: String(vae.shiftFactor),
  };
  const doc = {
    format: VAE_FORMAT,
    config: vae.config,
    scalingFactor: vae.scalingFactor,
    shiftFactor: vae.shiftFactor,
    parameters: vae.parameterCount(),
    ...info,
  };
  return saveModuleFiles(
    vae,
    dir,
    { weights: VAE_WEIGHTS_FILE, json: VAE_JSON_FILE },
    metadata,
    doc,
  );
}

/**
 * Returns the VAE stored in `dir` (see saveVae). Every tensor must be present with the shape
 * the config implies, and nothing extra; errors name the file and the field or tensor.
 */
export function loadVae(dir: string): Vae {
  const file = join(dir, VAE_WEIGHTS_FILE);
  return vaeFromSafetensors(readSafetensorsFile(file), file);
}
