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

/** Images encoded per chunk: the float copy of a large image set never exists at once. */
const ENCODE_CHUNK = 256;

/**
 * Returns `encode` applied to every image (per-image results concatenated), read from `cache`
 * when it holds the same images encoded by the same autoencoder (checked by the metadata `key`
 * and by re-encoding the first images), else encoded now, chunk by chunk with progress events,
 * and written to `cache` when given.
 */
function encodeCached<T extends Float32Array | Int32Array>(
  images: readonly Image[],
  what: { tensor: string; label: string; shape: number[]; key: Record<string, string> },
  encode: (chunk: readonly Image[]) => T,
  make: (n: number) => T,
  same: (a: number, b: number) => boolean,
  cache: string | undefined,
  emit: (e: RunEvent) => void,
): T {
  const per = what.shape.reduce((a, b) => a * b, 1);
  const probe = encode(images.slice(0, 4));
  if (cache && existsSync(cache)) {
    const f = readSafetensorsFile(cache);
    const t = f.tensors[what.tensor];
    const hit =
      t !== undefined &&
      Object.entries(what.key).every(([k, v]) => f.metadata[k] === v) &&
      t.data.length === images.length * per &&
      probe.every((v, i) => same(v, t.data[i]!));
    if (hit) {
      emit({ kind: "stage", message: `read ${images.length} cached ${what.label} from ${cache}` });
      const out = make(images.length * per);
      out.set(t.data);
      return out;
    }
  }
  const stage = `encoding ${images.length} images to ${what.label}`;
  emit({ kind: "stage", message: stage });
  const out = make(images.length * per);
  const t0 = Date.now();
  for (let at = 0; at < images.length; at += ENCODE_CHUNK) {
    out.set(encode(images.slice(at, at + ENCODE_CHUNK)), at * per);
    const done = Math.min(images.length, at + ENCODE_CHUNK);
    const seconds = (Date.now() - t0) / 1000;
    emit({
      kind: "progress",
      stage: "encode",
      done,
      total: images.length,
      etaSeconds: (seconds / done) * (images.length - done),
    });
  }
  if (cache) {
    writeSafetensorsFile(
      cache,
      { [what.tensor]: { shape: [images.length, ...what.shape], data: out } },
      what.key,
    );
  }
  return out;
}

/** Returns the scaled latents of `images` (see encodeCached for the cache). */
export function encodeAll(
  vae: Vae,
  images: readonly Image[],
  cache: string | undefined,
  data: string,
  emit: (e: RunEvent) => void,
): Float32Array {
  const first = images[0]!;
  const [C, h, w] = vae.latentShape(first.height, first.width);
  return encodeCached(
    images,
    {
      tensor: "latents",
      label: "latents",
      shape: [C, h, w],
      key: { data, count: String(images.length), scaling: String(vae.scalingFactor) },
    },
    (chunk) => vae.encodeLatents(imagesToTensor(chunk)).f32,
    (n) => new Float32Array(n),
    (a, b) => Math.abs(a - b) <= 1e-4 * (1 + Math.abs(a)),
    cache,
    emit,
  );
}

/** Returns the VQ code indices of `images`, h·w per image (see encodeCached for the cache). */
export function encodeAllCodes(
  vq: VqVae,
  images: readonly Image[],
  cache: string | undefined,
  data: string,
  emit: (e: RunEvent) => void,
): Int32Array {
  const first = images[0]!;
  const [h, w] = vq.codeGrid(first.height, first.width);
  return encodeCached(
    images,
    {
      tensor: "codes",
      label: "VQ codes",
      shape: [h, w],
      key: { data, count: String(images.length), codebook: String(vq.config.codebookSize) },
    },
    (chunk) => vq.encodeCodes(imagesToTensor(chunk)),
    (n) => new Int32Array(n),
    (a, b) => a === b,
    cache,
    emit,
  );
}

/** Returns the first `n` held-out captions of a dataset. */
export function heldOutCaptions(ds: ImageTextDataset, n: number): string[] {
  const s = ds.split("test");
  return Array.from({ length: Math.min(n, s.size) }, (_, i) => s.get(i).caption);
}
