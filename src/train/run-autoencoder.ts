/**
 * A run's image autoencoder — the KL-VAE of Transfusion or the VQ tokenizer of the
 * discrete-token model — found before the run's expensive stages when one exists (an earlier
 * stage of this run, or a given folder), else trained once the data and tokenizer are ready.
 * Knowing it early gives the image size in sequence positions before anything is trained.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Image } from "../data/image.js";
import { loadVae, VAE_WEIGHTS_FILE } from "../io/vae-files.js";
import { loadVqVae, VQVAE_WEIGHTS_FILE } from "../io/vqvae-files.js";
import { type Vae, vaeConfig } from "../model/vae.js";
import { type VqVae, vqvaeConfig } from "../model/vqvae.js";
import type { RunEvent, RunOptions } from "./run.js";
import { datasetOptions } from "./run-data.js";
import { trainVae } from "./vae-train.js";
import { trainVqVae } from "./vqvae-train.js";

export type Autoencoder = Vae | VqVae;

/** Returns the folder inside the run where the run trains its own autoencoder. */
export function autoencoderDir(out: string, discrete: boolean): string {
  return join(out, discrete ? "vqvae" : "vae");
}

/**
 * Returns the autoencoder a new run can use without training one: what an earlier, interrupted
 * attempt of this run trained into its folder, else the folder `vaeFrom`/`vqvaeFrom` names;
 * null when it must be trained.
 */
export function findAutoencoder(o: RunOptions, out: string, discrete: boolean): Autoencoder | null {
  const dir = autoencoderDir(out, discrete);
  if (discrete) {
    if (existsSync(join(dir, VQVAE_WEIGHTS_FILE))) return loadVqVae(dir);
    return o.vqvaeFrom ? loadVqVae(o.vqvaeFrom) : null;
  }
  if (existsSync(join(dir, VAE_WEIGHTS_FILE))) return loadVae(dir);
  return o.vaeFrom ? loadVae(o.vaeFrom) : null;
}

/**
 * Returns the side of the latent (or code) grid of an image of `imageSize` pixels: from the
 * autoencoder when there is one, else from the settings it will be trained with. Throws,
 * naming imageSize, when the autoencoder and `patchSize` cannot divide the image evenly.
 */
export function latentSide(
  o: RunOptions,
  ae: Autoencoder | null,
  discrete: boolean,
  patchSize: number,
): number {
  const levels = ae
    ? ae.config.levels
    : discrete
      ? vqvaeConfig({ ...o.vqvae?.config, codebookSize: o.model?.imageCodes ?? 1 }, "vqvae.config")
          .levels
      : vaeConfig(o.vae?.config, "vae.config").levels;
  const factor = 2 ** levels;
  const size = o.imageSize ?? 32;
  if (size % (factor * patchSize) !== 0) {
    throw new Error(
      `imageSize ${size} must be divisible by ${factor * patchSize}: the ${discrete ? "VQ tokenizer" : "VAE"} shrinks images ${factor}× per side and the model cuts its latents into ${patchSize}×${patchSize} patches`,
    );
  }
  return size / factor;
}

/** Returns the autoencoder trained for the run in its folder, with its held-out PSNR. */
export async function trainAutoencoder(
  o: RunOptions,
  out: string,
  discrete: boolean,
  images: readonly Image[],
  emit: (e: RunEvent) => void,
): Promise<{ ae: Autoencoder; psnr: number; dir: string }> {
  const dir = autoencoderDir(out, discrete);
  const data = o.data.endsWith(".jsonl") ? images : o.data;
  const seed = (o.train?.seed ?? 0) + 1;
  const onProgress = (p: { step: number; steps: number; loss: number; etaSeconds: number }) =>
    emit({ kind: "vae", step: p.step, steps: p.steps, loss: p.loss, etaSeconds: p.etaSeconds });
  if (discrete) {
    emit({ kind: "stage", message: "training the VQ image tokenizer" });
    const r = await trainVqVae({
      data,
      datasetOptions: datasetOptions(o),
      outDir: dir,
      seed,
      ...o.vqvae,
      config: { ...o.vqvae?.config, codebookSize: o.model!.imageCodes! },
      onProgress,
    });
    return { ae: r.vqvae, psnr: r.psnr, dir };
  }
  emit({ kind: "stage", message: "training the VAE" });
  const r = await trainVae({
    data,
    datasetOptions: datasetOptions(o),
    outDir: dir,
    seed,
    ...o.vae,
    onProgress,
  });
  return { ae: r.vae, psnr: r.psnr, dir };
}
