/**
 * The data side of a training run: the training examples (a dataset's captions and images, or a
 * JSONL file's documents) and their latents or VQ codes, cached in a file shared between runs.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { type DatasetOptions, getDataset } from "../data/datasets/index.js";
import type { ImageTextDataset } from "../data/datasets/types.js";
import { loadDocuments } from "../data/documents.js";
import { type Image, imagesToTensor } from "../data/image.js";
import type { Vae } from "../model/vae.js";
import type { VqVae } from "../model/vqvae.js";
import { readSafetensorsFile, writeSafetensorsFile } from "../tensor/safetensors.js";
import type { RunEvent, RunOptions } from "./run.js";

/** Training data in token form: caption pairs or document templates, plus their latents. */
export interface Prepared {
  captions: string[];
  templates: Array<Array<{ text: string } | { image: number }>> | null;
  images: Image[];
  dataset: ImageTextDataset | null;
}

export async function loadData(o: RunOptions): Promise<Prepared> {
  if (o.data.endsWith(".jsonl")) {
    const { documents, skipped } = await loadDocuments(resolve(o.data), {
      imageSize: o.imageSize ?? 32,
      channels: 3,
      onError: "skip",
    });
    if (skipped.length > 0) {
      o.onEvent?.({
        kind: "stage",
        message: `skipped ${skipped.length} bad documents (first: line ${skipped[0]!.line}: ${skipped[0]!.reason})`,
      });
    }
    if (documents.length === 0) throw new Error(`${o.data}: no usable documents`);
    const images: Image[] = [];
    const templates = documents.map((d) =>
      d.parts.map((p) => {
        if ("text" in p) return { text: p.text };
        images.push(p.image);
        return { image: images.length - 1 };
      }),
    );
    const captions = documents.flatMap((d) =>
      d.parts.flatMap((p) => ("text" in p ? [p.text] : [])),
    );
    return { captions, templates, images, dataset: null };
  }
  const dataset = await getDataset(o.data, datasetOptions(o));
  const split = dataset.split("train");
  const n = Math.min(o.maxImages ?? split.size, split.size);
  const captions: string[] = [];
  const images: Image[] = [];
  for (let i = 0; i < n; i++) {
    const ex = split.get(i);
    captions.push(ex.caption);
    images.push(ex.image);
  }
  return { captions, templates: null, images, dataset };
}

/** Returns the dataset options a run passes to getDataset. */
export function datasetOptions(o: RunOptions): DatasetOptions {
  // 32 px for every dataset unless asked otherwise (MNIST's 28 px would not divide into patches).
  return {
    imageSize: o.imageSize ?? 32,
    ...(o.shapesDifficulty ? { difficulty: o.shapesDifficulty } : {}),
  };
}

/**
 * Returns the scaled latents of `images`, read from `cache` when it holds the same images
 * encoded by the same VAE (checked by count, shape, scaling factor and the first latents),
 * else encoded now (and written to `cache` when given).
 */
export function encodeAll(
  vae: Vae,
  images: readonly Image[],
  cache: string | undefined,
  data: string,
  emit: (e: RunEvent) => void,
): Float32Array {
  const first = images[0]!;
  const [C, h] = vae.latentShape(first.height, first.width);
  const per = C * h * h;
  const key = { data, count: String(images.length), scaling: String(vae.scalingFactor) };
  const probe = vae.encodeLatents(imagesToTensor(images.slice(0, 4))).f32;
  if (cache && existsSync(cache)) {
    const f = readSafetensorsFile(cache);
    const t = f.tensors.latents;
    const same =
      t !== undefined &&
      Object.entries(key).every(([k, v]) => f.metadata[k] === v) &&
      t.data.length === images.length * per &&
      probe.every((v, i) => Math.abs(v - t.data[i]!) <= 1e-4 * (1 + Math.abs(v)));
    if (same) {
      emit({ kind: "stage", message: `read ${images.length} cached latents from ${cache}` });
      return Float32Array.from(t.data as Float32Array);
    }
  }
  emit({ kind: "stage", message: `encoding ${images.length} images to latents` });
  const latents = new Float32Array(images.length * per);
  // In chunks, so the float copy of a large image set never exists at once.
  for (let at = 0; at < images.length; at += 2048) {
    const chunk = images.slice(at, at + 2048);
    latents.set(vae.encodeLatents(imagesToTensor(chunk)).f32, at * per);
  }
  if (cache) {
    writeSafetensorsFile(
      cache,
      { latents: { shape: [images.length, C, h, h], data: latents } },
      key,
    );
  }
  return latents;
}

/**
 * Returns the VQ code indices of `images` (h·w per image), read from `cache` when it holds the
 * same images coded by the same tokenizer (checked by count and the first images' codes), else
 * encoded now (and written to `cache` when given).
 */
export function encodeAllCodes(
  vq: VqVae,
  images: readonly Image[],
  cache: string | undefined,
  data: string,
  emit: (e: RunEvent) => void,
): Int32Array {
  const first = images[0]!;
  const [h, w] = vq.codeGrid(first.height, first.width);
  const per = h * w;
  const key = { data, count: String(images.length), codebook: String(vq.config.codebookSize) };
  const probe = vq.encodeCodes(imagesToTensor(images.slice(0, 8)));
  if (cache && existsSync(cache)) {
    const f = readSafetensorsFile(cache);
    const t = f.tensors.codes;
    const same =
      t !== undefined &&
      Object.entries(key).every(([k, v]) => f.metadata[k] === v) &&
      t.data.length === images.length * per &&
      probe.every((v, i) => v === t.data[i]);
    if (same) {
      emit({ kind: "stage", message: `read ${images.length} cached image codes from ${cache}` });
      return Int32Array.from(t.data);
    }
  }
  emit({ kind: "stage", message: `encoding ${images.length} images to VQ codes` });
  const codes = new Int32Array(images.length * per);
  for (let at = 0; at < images.length; at += 2048) {
    codes.set(vq.encodeCodes(imagesToTensor(images.slice(at, at + 2048))), at * per);
  }
  if (cache) {
    writeSafetensorsFile(cache, { codes: { shape: [images.length, h, w], data: codes } }, key);
  }
  return codes;
}

/** Returns the first `n` held-out captions of a dataset. */
export function heldOutCaptions(ds: ImageTextDataset, n: number): string[] {
  const s = ds.split("test");
  return Array.from({ length: Math.min(n, s.size) }, (_, i) => s.get(i).caption);
}
