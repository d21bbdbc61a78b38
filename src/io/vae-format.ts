/**
 * The VAE weights file `vae.safetensors` as bytes: its name, format tag and how a `Vae` is
 * built from it (config and latent factors in the header metadata, every tensor checked).
 * No files here, so a web page loads a VAE the same way; `./vae-files.ts` adds the folder.
 */
import { Vae, type VaeConfig, vaeConfig } from "../model/vae.js";
import { Rng } from "../tensor/rng.js";
import type { StFile } from "../tensor/safetensors-format.js";
import { loadParameters, parseModuleFile } from "./module-format.js";

/** File names inside a VAE folder. */
export const VAE_WEIGHTS_FILE = "vae.safetensors";
export const VAE_JSON_FILE = "vae.json";
export const VAE_FORMAT = "transfusion-vae/1";

/**
 * Returns the VAE held by the parsed weights file `st` (read from `file`, which errors name).
 * Every tensor must be present with the shape the config implies, and nothing extra; the
 * scaling factor must be finite and positive, the shift finite.
 */
export function vaeFromSafetensors(st: StFile, file: string): Vae {
  const { tensors, field, config } = parseModuleFile(
    st,
    file,
    VAE_FORMAT,
    Object.keys(vaeConfig()),
  );
  const cfg = vaeConfig(config as Partial<VaeConfig>, `${file}: __metadata__.config`);
  const factor = (key: string, positive: boolean): number => {
    const v = Number(field(key));
    if (!Number.isFinite(v) || (positive && v <= 0)) {
      throw new Error(
        `${file}: metadata field "__metadata__.${key}" must be a finite${positive ? " positive" : ""} number, got "${field(key)}"`,
      );
    }
    return v;
  };
  const vae = new Vae(cfg, new Rng(0));
  vae.scalingFactor = factor("scaling_factor", true);
  vae.shiftFactor = factor("shift_factor", false);
  loadParameters(vae, tensors, file);
  return vae;
}
