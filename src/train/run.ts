/**
 * A whole training run, as `transfusion train` and `transfusion demo` perform it: data →
 * tokenizer → VAE (trained or loaded) → cached latents → Transfusion training with logs,
 * loss curves, sample grids and checkpoints. Re-running with the same output folder resumes,
 * provided it asks for the run that was saved (see run-checks.ts). Everything that can be
 * checked without training is checked first, so a mistake costs seconds, not a VAE.
 */
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { trainBpe } from "../data/bpe-train.js";
import { getTextCorpus, type ShapesDifficulty } from "../data/datasets/index.js";
import type { ImageTextDataset } from "../data/datasets/types.js";
import { type DocumentTemplate, type MixerOptions, mixBatch } from "../data/mixer.js";
import { Tokenizer } from "../data/tokenizer.js";
import type { TransfusionPipeline } from "../generate/pipeline.js";
import {
  checkCheckpointFingerprints,
  loadCheckpointAutoencoder,
  readCheckpointConfig,
  resolveCheckpointDir,
  TOKENIZER_FILE,
} from "../io/checkpoint.js";
import { codeToken, type TransfusionConfig } from "../model/config.js";
import { VqVae } from "../model/vqvae.js";
import { onHost, onHostAsync } from "../tensor/backends/index.js";
import {
  type Autoencoder,
  findAutoencoder,
  latentSide,
  trainAutoencoder,
} from "./run-autoencoder.js";
import {
  checkFits,
  checkRunOptions,
  compareWithCheckpoint,
  requestedFields,
  requestedModel,
  resumeChangesMessage,
  resumeError,
  runMixer,
  runSettings,
} from "./run-checks.js";
import { encodeAll, encodeAllCodes, heldOutCaptions, loadData } from "./run-data.js";
import { readHistory, removeTempLeftovers } from "./run-log.js";
import { type TrainStage, trainStage } from "./run-train.js";
import type { StepMetrics, TrainSettings } from "./trainer.js";
import type { TrainVaeOptions } from "./vae-train.js";
import type { TrainVqVaeOptions } from "./vqvae-train.js";

export interface RunOptions {
  /** A dataset name (shapes, mnist, fashion-mnist, emoji) or a JSONL document file. */
  data: string;
  /** Run folder: checkpoint/, vae/, metrics.jsonl, loss.png, samples/. */
  out: string;
  /** The model size: a name in `PRESETS` (model/config.ts). */
  preset: string;
  /** Changes to the preset's model fields (see `requestedFields` in run-checks.ts). */
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
  | { kind: "file"; what: string; path: string }
  /** A long stage without training steps (encoding images, training the tokenizer). */
  | {
      kind: "progress";
      stage: "encode" | "tokenizer" | "pack";
      done: number;
      total: number;
      etaSeconds: number;
    };

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

/** Runs (or resumes) a training run; returns the trained pipeline and what was written. */
export async function runTraining(o: RunOptions): Promise<RunResult> {
  return trainStage(o, await prepareRun(o));
}

/**
 * Returns everything a run needs before its first step — checked options, data, tokenizer,
 * autoencoder (trained when needed), latents and the batch source — for the training stage
 * (`transfusion train`) or for packing batches for another trainer (`transfusion pack`).
 */
export async function prepareRun(o: RunOptions): Promise<TrainStage> {
  const t0 = Date.now();
  const emit = o.onEvent ?? (() => {});
  checkRunOptions(o);
  const out = resolve(o.out);
  mkdirSync(out, { recursive: true });
  const ckptDir = join(out, "checkpoint");
  const leftovers = removeTempLeftovers(out, ckptDir);
  if (leftovers.length > 0) {
    emit({
      kind: "stage",
      message: `removed ${leftovers.length} temporary file(s) left by an interrupted write (first: ${leftovers[0]})`,
    });
  }
  const existing = o.resume === false ? null : resolveCheckpointDir(ckptDir);
  const files: Record<string, string> = {};

  // A resume must ask for the run that was saved; checked before anything is loaded. The
  // config is validated (readCheckpointConfig), so a damaged one fails naming its field.
  const saved = existing ? { dir: existing, ...readCheckpointConfig(existing) } : null;
  if (saved) {
    const { conflicts, changes } = compareWithCheckpoint(saved, o);
    if (conflicts.length > 0) throw resumeError(out, saved.dir, conflicts);
    if (changes.length > 0) emit({ kind: "stage", message: resumeChangesMessage(changes) });
  }
  const discrete = saved ? saved.model.imageCodes > 0 : (o.model?.imageCodes ?? 0) > 0;
  // An autoencoder that needs no training is loaded now: it sizes images in positions.
  let ae: Autoencoder | null = saved
    ? loadCheckpointAutoencoder(saved.dir, saved)
    : findAutoencoder(o, out, discrete);

  emit({ kind: "stage", message: `loading data: ${o.data}` });
  const data = await loadData(o);
  const hasImages = data.images.length > 0;
  if (!hasImages) {
    if (discrete) {
      throw new Error(
        `${o.data}: no document has an image, but the discrete-token model (model.imageCodes > 0) is an image model; leave model.imageCodes out to train a text-only language model`,
      );
    }
    if (!saved) {
      if (ae || o.vaeFrom)
        emit({ kind: "stage", message: "no document has an image: no VAE used" });
      ae = null;
    }
    emit({ kind: "stage", message: "no document has an image: training the language model only" });
  } else if (saved && !ae) {
    throw new Error(
      `${o.data}: the checkpoint in ${saved.dir} was trained on text only, but the data now has images; start over with --no-resume (resume: false) or use another --out`,
    );
  }

  // Positions one image takes, known before the tokenizer and the VAE are trained.
  const fields = requestedFields(o);
  const patch = saved ? saved.model.patchSize : fields.patchSize;
  const side = !hasImages ? 0 : saved ? saved.model.latentSize : latentSide(o, ae, discrete, patch);
  const perImage = hasImages ? (side / patch) ** 2 + 2 : 0;
  const rawDocs = data.templates ?? data.captions.map((c, i) => [{ text: c }, { image: i }]);
  checkFits(o, rawDocs, perImage, () => 1, true);

  // The plain text read once: it trains the tokenizer and feeds the language-model half.
  const corpusText = o.textCorpus
    ? getTextCorpus(o.textCorpus).split("train").text.slice(0, 1_500_000)
    : null;

  // Tokenizer: from the checkpoint when resuming (and checked to be its own), else trained.
  let tokenizer: Tokenizer;
  if (saved) {
    tokenizer = Tokenizer.load(join(saved.dir, TOKENIZER_FILE));
    checkCheckpointFingerprints(saved.dir, saved, tokenizer, ae);
  } else {
    emit({ kind: "stage", message: `training a ${o.vocabSize}-token BPE tokenizer` });
    const texts = [...data.captions];
    if (corpusText) texts.push(corpusText);
    const t0 = Date.now();
    tokenizer = trainBpe(texts, {
      vocabSize: o.vocabSize,
      onProgress: (done, total) => {
        const seconds = (Date.now() - t0) / 1000;
        emit({
          kind: "progress",
          stage: "tokenizer",
          done,
          total,
          etaSeconds: done > 0 ? (seconds / done) * (total - done) : 0,
        });
      },
    });
  }
  const captions = data.captions.map((c) => tokenizer.encode(c));
  const templates: DocumentTemplate[] | undefined = data.templates?.map((t) =>
    t.map((p) => ("text" in p ? { text: tokenizer.encode(p.text) } : p)),
  );
  const tokenDocs = templates ?? captions.map((c, i) => [{ text: c }, { image: i }]);
  checkFits(o, tokenDocs, perImage, (t) => t.length, false);

  let vaePsnr: number | null = null;
  if (hasImages && !ae) {
    // On a device backend the autoencoder trains on the host: its loop reads every step.
    const r = await onHostAsync(() => trainAutoencoder(o, out, discrete, data.images, emit));
    ae = r.ae;
    vaePsnr = r.psnr;
    files[discrete ? "vqvae" : "vae"] = r.dir;
  }

  let latents: Float32Array = new Float32Array(0);
  let codes: Int32Array | null = null;
  // The latent (or code) grid the autoencoder makes of the data's images: [channels, side].
  let grid: [number, number] | null = null;
  if (hasImages && ae) {
    const { height, width } = data.images[0]!;
    grid =
      ae instanceof VqVae
        ? [1, ae.codeGrid(height, width)[0]]
        : (ae.latentShape(height, width).slice(0, 2) as [number, number]);
    const a = ae;
    if (a instanceof VqVae)
      codes = onHost(() => encodeAllCodes(a, data.images, o.latentCache, o.data, emit));
    else latents = onHost(() => encodeAll(a, data.images, o.latentCache, o.data, emit));
  }
  // A text-only model keeps the preset's latent shape: its image codec exists but is unused.
  const config: TransfusionConfig =
    saved?.model ??
    requestedModel(o, {
      vocab: tokenizer.vocabSize + (codes ? o.model!.imageCodes! : 0),
      latentChannels: grid ? grid[0] : fields.latentChannels,
      latentSize: grid ? grid[1] : fields.latentSize,
    });
  if (grid && (grid[0] !== config.latentChannels || grid[1] !== config.latentSize)) {
    throw new Error(
      `${saved?.path ?? out}: fields "model.latentChannels" × "model.latentSize" are ${config.latentChannels}×${config.latentSize}, but the image autoencoder makes ${grid[0]}×${grid[1]} latents of these images`,
    );
  }
  // The discrete model's images are code tokens: the last imageCodes ids of the vocabulary.
  if (codes) for (let i = 0; i < codes.length; i++) codes[i] = codeToken(config, codes[i]!);
  const mixer: MixerOptions = runMixer(o, config.diffusionSteps);
  const g = config.latentSize / config.patchSize;
  const pack = {
    gridH: g,
    gridW: g,
    boiId: tokenizer.boiId,
    eoiId: tokenizer.eoiId,
    padId: tokenizer.padId,
    eodId: tokenizer.eodId,
  };
  const text = corpusText ? Int32Array.from(tokenizer.encode(corpusText)) : undefined;
  const sources = {
    captions,
    latents,
    latentSize: grid ? grid[0] * grid[1] * grid[1] : 0,
    ...(codes ? { codes } : {}),
    ...(templates ? { documents: templates } : {}),
    ...(text ? { text } : {}),
  };
  return {
    t0,
    out,
    ckptDir,
    existing,
    files,
    config,
    mixer,
    tokenizer,
    ae,
    vaePsnr,
    dataset: data.dataset,
    sampleCaptions:
      o.sampleCaptions ??
      (data.dataset ? heldOutCaptions(data.dataset, 8) : data.captions.slice(0, 8)),
    batchFor: (rng) => mixBatch(sources, pack, mixer, rng),
  };
}

export { heldOutCaptions, readHistory, runSettings };
