/** Shared test helpers: backend iteration, finite-difference gradient checks, file surgery. */
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { getDataset } from "../src/data/datasets/index.js";
import { type Document, writeDocuments } from "../src/data/documents.js";
import { type BackendName, setBackend, tryNativeBackend } from "../src/tensor/backends/index.js";
import { Rng } from "../src/tensor/rng.js";
import { readSafetensorsFile, writeSafetensorsFile } from "../src/tensor/safetensors.js";
import { noGrad, type Tensor } from "../src/tensor/tensor.js";
import type { RunEvent, RunOptions } from "../src/train/run.js";

/** Returns the backends available here: js always, native when the addon is built. */
/** Returns t's gradient as a host array (null without one); throws for a device gradient. */
export function hostGrad(t: Tensor): Float32Array | null {
  const g = t.grad;
  if (g !== null && !(g instanceof Float32Array))
    throw new Error(`${t}: gradient in device memory`);
  return g;
}

export function availableBackends(): BackendName[] {
  return tryNativeBackend().backend ? ["js", "native"] : ["js"];
}

/** Returns why the native backend is missing, or null. */
export function nativeMissing(): string | null {
  const n = tryNativeBackend();
  return n.backend ? null : `native backend not built: ${n.error}`;
}

/** Runs fn with `name` as the active backend, restoring js afterwards. */
export function withBackend<T>(name: BackendName, fn: () => T): T {
  setBackend(name);
  try {
    return fn();
  } finally {
    setBackend("js");
  }
}

/** Runs the async fn with `name` as the active backend, restoring js once it has settled. */
export async function withBackendAsync<T>(name: BackendName, fn: () => Promise<T>): Promise<T> {
  setBackend(name);
  try {
    return await fn();
  } finally {
    setBackend("js");
  }
}

export interface GradCheckOptions {
  /** Finite-difference step (float32 needs a large one). */
  eps?: number;
  /** Absolute tolerance, scaled by the largest gradient magnitude. */
  atol?: number;
  /** Relative tolerance. */
  rtol?: number;
  /** Elements checked per input (all when the input is smaller). */
  samples?: number;
  seed?: number;
}

/**
 * Checks the analytic gradients of `f` at `inputs` against central finite differences of
 * L = Σ f(inputs) ⊙ r for a fixed random r. Throws with the worst mismatch.
 */
export function gradCheck(
  f: (xs: Tensor[]) => Tensor,
  inputs: Tensor[],
  opts: GradCheckOptions = {},
): void {
  const eps = opts.eps ?? 1e-2;
  const atol = opts.atol ?? 1e-2;
  const rtol = opts.rtol ?? 2e-2;
  const samples = opts.samples ?? 24;
  const rng = new Rng(opts.seed ?? 7);
  for (const x of inputs) {
    x.requiresGrad = true;
    x.grad = null;
  }
  const out = f(inputs);
  const r = new Float32Array(out.size);
  rng.fillNormal(r);
  out.backward(r);
  const lossAt = (): number =>
    noGrad(() => {
      const o = f(inputs).f32;
      let s = 0;
      for (let i = 0; i < o.length; i++) s += o[i]! * r[i]!;
      return s;
    });
  inputs.forEach((x, xi) => {
    const grad = hostGrad(x) ?? new Float32Array(x.size);
    let gmax = 0;
    for (let i = 0; i < grad.length; i++) gmax = Math.max(gmax, Math.abs(grad[i]!));
    const idx =
      x.size <= samples
        ? [...Array(x.size).keys()]
        : Array.from({ length: samples }, () => rng.int(x.size));
    const d = x.f32;
    for (const i of idx) {
      const orig = d[i]!;
      d[i] = orig + eps;
      const lp = lossAt();
      d[i] = orig - eps;
      const lm = lossAt();
      d[i] = orig;
      const num = (lp - lm) / (2 * eps);
      const ana = grad[i]!;
      const tol = atol * Math.max(1, gmax) + rtol * Math.abs(num);
      assert.ok(
        Math.abs(num - ana) <= tol,
        `input ${xi} element ${i}: analytic ${ana} vs numeric ${num} (tol ${tol.toExponential(2)})`,
      );
    }
  });
}

/** Returns the largest |a − b| over two arrays of equal length. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "length mismatch");
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/**
 * Rewrites the float safetensors file at `path` (metadata kept) after `edit` has changed the
 * copies of its tensors; used to plant NaN, foreign weights or wrong shapes in saved files.
 */
export function editSafetensors(
  path: string,
  edit: (tensors: Record<string, { shape: number[]; data: Float32Array }>) => void,
): void {
  const f = readSafetensorsFile(path);
  const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [name, t] of Object.entries(f.tensors)) {
    tensors[name] = { shape: [...t.shape], data: Float32Array.from(t.data) };
  }
  edit(tensors);
  writeSafetensorsFile(path, tensors, f.metadata);
}

/** Returns the options of a tiny run (1-layer model, 3-step VAE) on `data`, events collected. */
export function tinyRunOptions(
  data: string,
  out: string,
  steps: number,
  events: RunEvent[] = [],
): RunOptions {
  return {
    data,
    out,
    preset: "tiny",
    model: { dim: 32, layers: 1, heads: 2, mlpHidden: 64, patchSize: 4 },
    seqLen: 64,
    rows: 2,
    vocabSize: 300,
    textCorpus: null,
    vae: { steps: 3, batchSize: 4, config: { baseChannels: 8, groups: 4 } },
    train: { steps, checkpointEvery: 2, warmupSteps: 1 },
    sampleEvery: 0,
    sampleCaptions: ["a large red circle"],
    onEvent: (e) => events.push(e),
  };
}

/** The layouts `shapesDocsFile` cycles through. */
export type DocLayout = "caption-first" | "image-first" | "two-images";

/**
 * Returns a JSONL document file in `dir` made of the first `n` shapes training examples, laid
 * out by cycling through `layouts` (caption → image, image → caption, or "two:" and the image
 * twice), with the images written beside it.
 */
export async function shapesDocsFile(
  dir: string,
  n: number,
  layouts: readonly DocLayout[] = ["caption-first", "image-first"],
): Promise<string> {
  const split = (await getDataset("shapes")).split("train");
  const docs: Document[] = [];
  for (let i = 0; i < n; i++) {
    const ex = split.get(i);
    const layout = layouts[i % layouts.length]!;
    if (layout === "caption-first")
      docs.push({ parts: [{ text: ex.caption }, { image: ex.image }] });
    else if (layout === "image-first")
      docs.push({ parts: [{ image: ex.image }, { text: ex.caption }] });
    else docs.push({ parts: [{ text: "two:" }, { image: ex.image }, { image: ex.image }] });
  }
  mkdirSync(dir, { recursive: true });
  const file = join(dir, "docs.jsonl");
  await writeDocuments(file, docs, join(dir, "images"));
  return file;
}

export { tinyTrainBatch } from "./batches.js";
