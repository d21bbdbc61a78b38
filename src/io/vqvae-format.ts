/**
 * The VQ tokenizer's weights file `vqvae.safetensors` as bytes: its name, format tag and how a
 * `VqVae` is built from it (config in the header metadata, every tensor checked). No files
 * here, so a web page loads it the same way; `./vqvae-files.ts` adds the folder.
 */
import { VqVae, type VqVaeConfig, vqvaeConfig } from "../model/vqvae.js";
import { Rng } from "../tensor/rng.js";
import type { StFile } from "../tensor/safetensors-format.js";
import { loadParameters, parseModuleFile } from "./module-format.js";

/** File names inside a VQ tokenizer folder. */
export const VQVAE_WEIGHTS_FILE = "vqvae.safetensors";
export const VQVAE_JSON_FILE = "vqvae.json";
export const VQVAE_FORMAT = "transfusion-vqvae/1";

/**
 * Returns the VQ tokenizer held by the parsed weights file `st` (read from `file`, which errors
 * name). The config must list every field and every tensor must be present with the shape it
 * implies, nothing extra.
 */
export function vqvaeFromSafetensors(st: StFile, file: string): VqVae {
  const keys = Object.keys(vqvaeConfig());
  const { tensors, config } = parseModuleFile(st, file, VQVAE_FORMAT, keys);
  const vq = new VqVae(
    vqvaeConfig(config as Partial<VqVaeConfig>, `${file}: __metadata__.config`),
    new Rng(0),
  );
  loadParameters(vq, tensors, file);
  return vq;
}
