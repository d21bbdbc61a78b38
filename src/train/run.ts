/**
 * A whole training run, as `transfusion train` and `transfusion demo` perform it: data →
 * tokenizer → VAE (trained or loaded) → cached latents → Transfusion training with logs,
 * loss curves, sample grids and checkpoints. Re-running with the same output folder resumes.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { trainBpe } from "../data/bpe-train.js";
import {
  type DatasetOptions,
  getDataset,
  getTextCorpus,
  type ShapesDifficulty,
} from "../data/datasets/index.js";
import type { ImageTextDataset } from "../data/datasets/types.js";
import { loadDocuments } from "../data/documents.js";
import { writeImageGrid } from "../data/grid.js";
import { type Image, imagesToTensor, writePng } from "../data/image.js";
import {
  DEFAULT_MIXER,
  type DocumentTemplate,
  type MixerOptions,
  mixBatch,
} from "../data/mixer.js";
import { documentLength } from "../data/pack.js";
import { Tokenizer } from "../data/tokenizer.js";
import { cosineSchedule } from "../diffusion/schedule.js";
import { TransfusionPipeline } from "../generate/pipeline.js";
import {
  CHECKPOINT_FORMAT,
  CHECKPOINT_VERSION,
  CONFIG_FILE,
  readJson,
  readSafetensorsFile,
  resolveCheckpointDir,
  TOKENIZER_FILE,
  writeJson,
  writeSafetensorsFile,
} from "../io/checkpoint.js";
import { loadVae, saveVae } from "../io/vae-files.js";
import { loadVqVae, saveVqVae, VQVAE_WEIGHTS_FILE } from "../io/vqvae-files.js";
import { codeToken, isDiscrete, makeConfig, type TransfusionConfig } from "../model/config.js";
import { Transfusion } from "../model/transfusion.js";
import type { Vae } from "../model/vae.js";
import { VqVae } from "../model/vqvae.js";
import { Rng } from "../tensor/rng.js";
import { chartSvg, renderChart } from "./plot.js";
import {
  DEFAULT_TRAIN,
  loadWeights,
  type StepMetrics,
  Trainer,
  type TrainSettings,
} from "./trainer.js";
import { type TrainVaeOptions, trainVae } from "./vae-train.js";
import { type TrainVqVaeOptions, trainVqVae } from "./vqvae-train.js";

export interface RunOptions {
  /** A dataset name (shapes, mnist, fashion-mnist, emoji) or a JSONL document file. */
  data: string;
  /** Run folder: checkpoint/, vae/, metrics.jsonl, loss.png, samples/. */
  out: string;
  preset: string;
  model?: Partial<TransfusionConfig>;
  train?: Partial<TrainSettings>;
  mixer?: Partial<MixerOptions>;
  seqLen: number;
  rows: number;
  /** BPE vocabulary size (special tokens included). */
  vocabSize: number;
  /** Plain-text corpus for the language-model half (null: captions only). */
  textCorpus: string | null;
  /** Use the VAE in this folder instead of training one. */
  vaeFrom?: string;
  vae?: Partial<Pick<TrainVaeOptions, "steps" | "batchSize" | "lr" | "config">>;
  /** The discrete-token model (`model.imageCodes` > 0): use the VQ tokenizer in this folder. */
  vqvaeFrom?: string;
  /** …or train one with these settings (its codebook size is `model.imageCodes`). */
  vqvae?: Partial<Pick<TrainVqVaeOptions, "steps" | "batchSize" | "lr" | "config">>;
  imageSize?: number;
  /** Variant of the `shapes` data: easy (one shape, four colours), medium (default), hard. */
  shapesDifficulty?: ShapesDifficulty;
  /**
   * A file caching the training latents (safetensors), shared by runs that use the same VAE
   * and images; reused only when it matches them.
   */
  latentCache?: string;
  /** Training images used (default: all). */
  maxImages?: number;
  /** Steps between sample grids (0 = only at the end). */
  sampleEvery: number;
  /** Captions drawn in the sample grids. */
  sampleCaptions?: string[];
  /** Resume from the run folder's checkpoint when there is one (default true). */
  resume?: boolean;
  onEvent?: (e: RunEvent) => void;
  shouldStop?: () => boolean;
}

export type RunEvent =
  | { kind: "stage"; message: string }
  | { kind: "vae"; step: number; steps: number; loss: number; etaSeconds: number }
  | { kind: "step"; metrics: StepMetrics; steps: number; etaSeconds: number }
  | { kind: "file"; what: string; path: string };

export interface RunResult {
  pipeline: TransfusionPipeline;
  checkpoint: string;
  steps: number;
  interrupted: boolean;
  seconds: number;
  final: { lm: number; image: number } | null;
  files: Record<string, string>;
  vaePsnr: number | null;
  dataset: ImageTextDataset | null;
}

/** Training data in token form: caption pairs or document templates, plus their latents. */
interface Prepared {
  captions: string[];
  templates: Array<Array<{ text: string } | { image: number }>> | null;
  images: Image[];
  dataset: ImageTextDataset | null;
}

async function loadData(o: RunOptions): Promise<Prepared> {
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
function datasetOptions(o: RunOptions): DatasetOptions {
  // 32 px for every dataset unless asked otherwise (MNIST's 28 px would not divide into patches).
  return {
    imageSize: o.imageSize ?? 32,
    ...(o.shapesDifficulty ? { difficulty: o.shapesDifficulty } : {}),
  };
}

/** Returns the run's training settings with defaults and overrides. */
export function runSettings(o: RunOptions): TrainSettings {
  return { ...DEFAULT_TRAIN, ...o.train };
}

/** Runs (or resumes) a training run; returns the trained pipeline and what was written. */
export async function runTraining(o: RunOptions): Promise<RunResult> {
  const t0 = Date.now();
  const emit = o.onEvent ?? (() => {});
  const out = resolve(o.out);
  mkdirSync(out, { recursive: true });
  const ckptDir = join(out, "checkpoint");
  const existing = o.resume === false ? null : resolveCheckpointDir(ckptDir);
  const files: Record<string, string> = {};

  emit({ kind: "stage", message: `loading data: ${o.data}` });
  const data = await loadData(o);

  // The plain text read once: it trains the tokenizer and feeds the language-model half.
  const corpusText = o.textCorpus
    ? getTextCorpus(o.textCorpus).split("train").text.slice(0, 1_500_000)
    : null;

  // Tokenizer: from the checkpoint when resuming, else trained on captions + corpus.
  let tokenizer: Tokenizer;
  if (existing) {
    tokenizer = Tokenizer.load(join(existing, TOKENIZER_FILE));
  } else {
    emit({ kind: "stage", message: `training a ${o.vocabSize}-token BPE tokenizer` });
    const texts = [...data.captions];
    if (corpusText) texts.push(corpusText);
    tokenizer = trainBpe(texts, { vocabSize: o.vocabSize });
  }

  const saved = existing
    ? (readJson(join(existing, CONFIG_FILE)) as { model: TransfusionConfig }).model
    : null;
  const discrete = isDiscrete({
    imageCodes: saved ? saved.imageCodes : (o.model?.imageCodes ?? 0),
  });
  const first = data.images[0]!;

  // The image autoencoder: from the checkpoint, an earlier stage of this run, a given folder,
  // or trained now — the KL-VAE for Transfusion, the VQ tokenizer for the discrete-token model.
  let vae: Vae | VqVae;
  let vaePsnr: number | null = null;
  const vaeDir = join(out, discrete ? "vqvae" : "vae");
  const imageData = o.data.endsWith(".jsonl") ? data.images : o.data;
  const seed = (o.train?.seed ?? 0) + 1;
  const onProgress = (p: { step: number; steps: number; loss: number; etaSeconds: number }) =>
    emit({ kind: "vae", step: p.step, steps: p.steps, loss: p.loss, etaSeconds: p.etaSeconds });
  if (discrete) {
    if (existing) vae = loadVqVae(existing);
    else if (existsSync(join(vaeDir, VQVAE_WEIGHTS_FILE))) vae = loadVqVae(vaeDir);
    else if (o.vqvaeFrom) vae = loadVqVae(o.vqvaeFrom);
    else {
      emit({ kind: "stage", message: "training the VQ image tokenizer" });
      const r = await trainVqVae({
        data: imageData,
        datasetOptions: datasetOptions(o),
        outDir: vaeDir,
        seed,
        ...o.vqvae,
        config: { ...o.vqvae?.config, codebookSize: o.model!.imageCodes! },
        onProgress,
      });
      vae = r.vqvae;
      vaePsnr = r.psnr;
      files.vqvae = vaeDir;
    }
  } else if (existing) vae = loadVae(existing);
  else if (existsSync(join(vaeDir, "vae.safetensors"))) vae = loadVae(vaeDir);
  else if (o.vaeFrom) vae = loadVae(o.vaeFrom);
  else {
    emit({ kind: "stage", message: "training the VAE" });
    const r = await trainVae({
      data: imageData,
      datasetOptions: datasetOptions(o),
      outDir: vaeDir,
      seed,
      ...o.vae,
      onProgress,
    });
    vae = r.vae;
    vaePsnr = r.psnr;
    files.vae = vaeDir;
  }

  let C: number;
  let h: number;
  let latents: Float32Array = new Float32Array(0);
  let codes: Int32Array | null = null;
  if (vae instanceof VqVae) {
    C = 1;
    [h] = vae.codeGrid(first.height, first.width);
    codes = encodeAllCodes(vae, data.images, o.latentCache, o.data, emit);
  } else {
    [C, h] = vae.latentShape(first.height, first.width);
    latents = encodeAll(vae, data.images, o.latentCache, o.data, emit);
  }

  const config: TransfusionConfig =
    saved ??
    makeConfig(o.preset, {
      ...o.model,
      vocab: tokenizer.vocabSize + (codes ? o.model!.imageCodes! : 0),
      latentChannels: C,
      latentSize: h,
      ...(codes ? { patchSize: 1 } : {}),
    });
  // The discrete model's images are code tokens: the last imageCodes ids of the vocabulary.
  if (codes) for (let i = 0; i < codes.length; i++) codes[i] = codeToken(config, codes[i]!);
  const mixer: MixerOptions = {
    ...DEFAULT_MIXER,
    diffusionSteps: config.diffusionSteps,
    ...o.mixer,
    seqLen: o.seqLen,
    rows: o.rows,
  };
  const g = config.latentSize / config.patchSize;
  const pack = {
    gridH: g,
    gridW: g,
    boiId: tokenizer.boiId,
    eoiId: tokenizer.eoiId,
    padId: tokenizer.padId,
    eodId: tokenizer.eodId,
  };
  const captions = data.captions.map((c) => tokenizer.encode(c));
  const templates: DocumentTemplate[] | undefined = data.templates?.map((t) =>
    t.map((p) => ("text" in p ? { text: tokenizer.encode(p.text) } : p)),
  );
  templates?.forEach((t, i) => {
    const len = documentLength(
      { segments: t.map((p) => ("text" in p ? p : { image: p.image, t: 0 })) },
      pack,
    );
    if (len > o.seqLen)
      throw new Error(
        `${o.data}: document ${i + 1} needs ${len} positions; raise --seq-len above it`,
      );
  });
  const text = corpusText ? Int32Array.from(tokenizer.encode(corpusText)) : undefined;
  const sources = {
    captions,
    latents,
    latentSize: C * h * h,
    ...(codes ? { codes } : {}),
    ...(templates ? { documents: templates } : {}),
    ...(text ? { text } : {}),
  };

  const settings = runSettings(o);
  const model = new Transfusion(config, new Rng(settings.seed));
  const schedule = cosineSchedule({ T: config.diffusionSteps });
  const metricsPath = join(out, "metrics.jsonl");
  const sampleModel = new Transfusion(config, new Rng(0));
  const sampler = new TransfusionPipeline(sampleModel, tokenizer, vae, out);
  const sampleCaptions =
    o.sampleCaptions ??
    (data.dataset ? heldOutCaptions(data.dataset, 8) : data.captions.slice(0, 8));
  mkdirSync(join(out, "samples"), { recursive: true });

  const writeStatic = (dir: string, step: number) => {
    writeJson(join(dir, CONFIG_FILE), {
      format: CHECKPOINT_FORMAT,
      version: CHECKPOINT_VERSION,
      step,
      model: config,
      train: settings,
      mixer,
      data: o.data,
      // What the evaluation needs to rebuild the held-out data (see `transfusion eval`).
      run: {
        textCorpus: o.textCorpus,
        shapesDifficulty: o.shapesDifficulty ?? null,
        imageSize: o.imageSize ?? 32,
      },
      special: {
        boi: tokenizer.boiId,
        eoi: tokenizer.eoiId,
        pad: tokenizer.padId,
        eod: tokenizer.eodId,
      },
    });
    tokenizer.save(join(dir, TOKENIZER_FILE));
    if (vae instanceof VqVae) saveVqVae(vae, dir);
    else saveVae(vae, dir);
  };
  const writeSamples = async (trainer: Trainer) => {
    loadWeights(sampleModel, trainer.samplingWeights());
    const { images } = sampler.textToImage(sampleCaptions, {
      sampler: "ddim",
      steps: 25,
      guidanceScale: 3,
      seed: 1,
    });
    const path = join(out, "samples", `step-${String(trainer.step).padStart(6, "0")}.png`);
    await writeImageGrid(path, images, {
      columns: Math.min(8, images.length),
      captions: sampleCaptions,
    });
    files.samples = path;
    emit({ kind: "file", what: "samples", path });
  };
  const history: StepMetrics[] = [];
  const writeCurves = async () => {
    if (history.length === 0) return;
    const series = [
      {
        name: "text CE",
        colour: [31, 119, 180] as [number, number, number],
        points: history.map((m) => [m.step, m.lm] as [number, number]),
      },
      {
        name: "image MSE",
        colour: [214, 39, 40] as [number, number, number],
        points: history.map((m) => [m.step, m.image] as [number, number]),
      },
    ];
    const opts = { title: "training loss (log scale)", xLabel: "step", logY: true };
    await writePng(join(out, "loss.png"), renderChart(series, opts));
    writeFileSync(join(out, "loss.svg"), chartSvg(series, opts));
    files.lossCurve = join(out, "loss.png");
  };

  const trainer = new Trainer({
    model,
    settings,
    schedule,
    batchFor: (_step, rng) => mixBatch(sources, pack, mixer, rng),
    checkpointDir: ckptDir,
    writeStatic,
    shouldStop: o.shouldStop ?? (() => false),
    onStep: async (m) => {
      history.push(m);
      appendFileSync(metricsPath, `${JSON.stringify({ ...m, time: new Date().toISOString() })}\n`);
      const elapsed = (Date.now() - stepStart) / 1000;
      const done = trainer.step - startStep;
      const eta = done > 0 ? (elapsed / done) * (settings.steps - trainer.step) : 0;
      emit({ kind: "step", metrics: m, steps: settings.steps, etaSeconds: eta });
      if (o.sampleEvery > 0 && trainer.step % o.sampleEvery === 0 && trainer.step < settings.steps)
        await writeSamples(trainer);
    },
    onCheckpoint: (dir) => {
      emit({ kind: "file", what: "checkpoint", path: dir });
      void writeCurves();
    },
  });
  let startStep = 0;
  if (existing) {
    startStep = trainer.resume(ckptDir);
    emit({ kind: "stage", message: `resuming from step ${startStep} (${existing})` });
    history.push(...readHistory(metricsPath, startStep));
    // Keep the log consistent with the checkpoint: drop lines past the resumed step.
    writeFileSync(
      metricsPath,
      history.map((m) => JSON.stringify(m)).join("\n") + (history.length ? "\n" : ""),
    );
  } else {
    writeFileSync(metricsPath, "");
  }
  emit({
    kind: "stage",
    message: `training ${model.parameterCount().toLocaleString()} parameters for ${settings.steps} steps`,
  });
  const stepStart = Date.now();
  const r = await trainer.run();
  await writeCurves();
  if (!r.interrupted) await writeSamples(trainer);
  files.checkpoint = ckptDir;
  files.metrics = metricsPath;
  loadWeights(sampleModel, trainer.samplingWeights());
  const last = history.slice(-20);
  const avg = (f: (m: StepMetrics) => number) =>
    last.reduce((s, m) => s + f(m), 0) / Math.max(1, last.length);
  return {
    pipeline: sampler,
    checkpoint: ckptDir,
    steps: r.steps,
    interrupted: r.interrupted,
    seconds: (Date.now() - t0) / 1000,
    final: last.length ? { lm: avg((m) => m.lm), image: avg((m) => m.image) } : null,
    files,
    vaePsnr,
    dataset: data.dataset,
  };
}

/**
 * Returns the scaled latents of `images`, read from `cache` when it holds the same images
 * encoded by the same VAE (checked by count, shape, scaling factor and the first latents),
 * else encoded now (and written to `cache` when given).
 */
function encodeAll(
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
function encodeAllCodes(
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

/** Returns the per-step metrics logged in a run's metrics.jsonl, up to step `upTo`. */
export function readHistory(path: string, upTo = Number.POSITIVE_INFINITY): StepMetrics[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as StepMetrics)
    .filter((m) => m.step <= upTo);
}
