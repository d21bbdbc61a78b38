/**
 * Running an experiment: one shared VAE, latent cache and evaluation classifier; every variant
 * trained once per seed (each run resumable, and shared with other experiments); every trained
 * model evaluated (results cached as JSON beside the run); then the report.
 *
 * Layout under the root folder (default runs/experiments; experiments on MNIST under mnist/):
 *   vae/  latents.safetensors  vqvae/  codes.safetensors  classifiers/<dataset>/
 *   runs/<variant>-s<seed>/{checkpoint,…,eval-g<scale>.json}
 */
import { existsSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { runTrainingFlops } from "../bench/flops.js";
import { getDataset } from "../data/datasets/index.js";
import type { SamplerKind } from "../diffusion/config.js";
import { ensureClassifier } from "../eval/classifier.js";
import { type EvaluateResult, evaluatePipeline } from "../eval/evaluate.js";
import { TransfusionPipeline } from "../generate/pipeline.js";
import {
  readCheckpointConfig,
  readJson,
  resolveCheckpointDir,
  writeJson,
} from "../io/checkpoint.js";
import { VQVAE_WEIGHTS_FILE } from "../io/vqvae-files.js";
import { onHostAsync } from "../tensor/backends/index.js";
import { type RunEvent, type RunOptions, readHistory, runTraining } from "../train/run.js";
import { compareWithCheckpoint } from "../train/run-checks.js";
import type { RunConfig } from "../train/run-config.js";
import type { StepMetrics } from "../train/trainer.js";
import { trainVae } from "../train/vae-train.js";
import { trainVqVae } from "../train/vqvae-train.js";
import {
  EVAL_GUIDANCE,
  EVAL_SAMPLE_STEPS,
  type ExperimentSpec,
  experimentRunConfig,
  type Variant,
} from "./specs.js";

export interface ExperimentOptions {
  /** Folder holding the shared VAE, classifier and every run (default runs/experiments). */
  root: string;
  seeds: number[];
  /** Training steps of every run. */
  steps: number;
  /** Held-out captions and images per evaluation. */
  evalCount: number;
  /** How evaluation images are drawn (respaced DDPM or DDIM) and in how many steps. */
  sampler: SamplerKind;
  /** Denoising steps per evaluation image (default: the experiment's `sampleSteps`). */
  sampleSteps?: number;
  /** Overrides of the shared run config (tests use a tiny one). */
  base?: Partial<RunConfig>;
  /** VAE training steps (default: the VAE trainer's). */
  vaeSteps?: number;
  /** VQ tokenizer training steps (default: the VQ trainer's). */
  vqvaeSteps?: number;
  /** Evaluation-classifier training steps (default: the classifier trainer's). */
  classifierSteps?: number;
  /** UTF-8 bytes of held-out text scored. */
  textBytes?: number;
  onEvent?: (e: ExperimentEvent) => void;
  shouldStop?: () => boolean;
}

export type ExperimentEvent =
  | { kind: "stage"; message: string }
  | { kind: "run"; run: string; index: number; total: number; event: RunEvent };

/** Bumped when what an evaluation measures changes, so stored ones are redone. */
export const EVAL_VERSION = 3;

/** The metrics of one trained model at one guidance scale. */
export interface RunRecord {
  version: number;
  variant: string;
  seed: number;
  guidance: number;
  steps: number;
  parameters: number;
  /** Training FLOPs by the rule of `runTrainingFlops` (transformer + patch codec). */
  flops: number;
  /** Mean image and text loss over the last 10% of steps (raw weights, training batches). */
  finalImageLoss: number | null;
  finalTextLoss: number | null;
  metrics: Pick<
    EvaluateResult,
    | "bitsPerByte"
    | "perplexity"
    | "generationAccuracy"
    | "fid"
    | "fidRealFloor"
    | "captionAccuracy"
    | "captionExact"
    | "captionLoss"
    | "imageLoss"
    | "checkerAccuracy"
  > &
    // Absent from evaluations cached before the metric existed.
    Partial<Pick<EvaluateResult, "noiseImages">>;
  settings: EvaluateResult["settings"];
}

export interface ExperimentResult {
  spec: ExperimentSpec;
  records: RunRecord[];
  /** Run folders by `${variant}-s${seed}`. */
  runDirs: Record<string, string>;
  config: RunConfig;
  interrupted: boolean;
}

/** Returns the folder name of one variant's run for one seed. */
export function runName(variant: Variant, seed: number): string {
  return `${variant.id}-s${seed}`;
}

/**
 * Returns the run every variant of `spec` modifies: `experimentRunConfig` with the options'
 * overrides (`base`) and every run's steps.
 */
export function experimentBase(
  spec: ExperimentSpec,
  o: Pick<ExperimentOptions, "steps" | "base">,
): RunConfig {
  const defaults = experimentRunConfig(o.steps, spec.data);
  const base: RunConfig = { ...defaults, ...o.base };
  base.train = { ...defaults.train, ...o.base?.train, steps: o.steps };
  return base;
}

/**
 * Returns the RunOptions of variant `v`'s run for `seed` under the experiment folder `root`
 * (`dataRoot`): the shared run with the variant's changes, in its own run folder, with the
 * shared VAE (or VQ tokenizer) and latent (or code) cache.
 */
export function variantRunOptions(
  root: string,
  base: RunConfig,
  v: Variant,
  seed: number,
  steps: number,
): RunOptions {
  const discrete = (v.model?.imageCodes ?? 0) > 0;
  return {
    ...variantConfig(base, v, seed, steps),
    out: join(root, "runs", runName(v, seed)),
    vaeFrom: join(root, "vae"),
    vqvaeFrom: join(root, "vqvae"),
    latentCache: join(root, discrete ? "codes.safetensors" : "latents.safetensors"),
  };
}

/** Returns the shared run config with a variant's changes applied. */
export function variantConfig(
  base: RunConfig,
  v: Variant,
  seed: number,
  steps = base.train?.steps,
): RunConfig {
  return {
    ...base,
    model: { ...base.model, ...v.model },
    mixer: { ...base.mixer, ...v.mixer },
    train: { ...base.train, seed, ...(steps !== undefined ? { steps } : {}) },
  };
}

function finalLosses(history: StepMetrics[]): { image: number | null; text: number | null } {
  const tail = history.slice(-Math.max(1, Math.floor(history.length / 10)));
  if (tail.length === 0) return { image: null, text: null };
  const avg = (f: (m: StepMetrics) => number) => tail.reduce((s, m) => s + f(m), 0) / tail.length;
  return { image: avg((m) => m.image), text: avg((m) => m.lm) };
}

/** Returns the training steps of a variant: `--steps` times its budget scale. */
export function variantSteps(v: Variant, steps: number): number {
  return Math.max(1, Math.round(steps * (v.stepsScale ?? 1)));
}

/**
 * Returns the fields in which a run folder's saved checkpoint differs from the run `o` would
 * make (as a resume would refuse them), or [] when it matches or holds no checkpoint. Runs
 * made under an earlier protocol are then retrained rather than refused or silently reused.
 */
function staleFields(o: RunOptions): string[] {
  const found = resolveCheckpointDir(join(o.out, "checkpoint"));
  if (!found) return [];
  return compareWithCheckpoint(readCheckpointConfig(found), o).conflicts.map((c) => c.field);
}

/** Returns the folder of an experiment's shared pieces and runs for its data. */
export function dataRoot(root: string, spec: ExperimentSpec): string {
  return spec.data === "mnist" ? join(resolve(root), "mnist") : resolve(root);
}

/** Trains (or resumes) every run of an experiment, evaluates each, and returns the records. */
export async function runExperiment(
  spec: ExperimentSpec,
  o: ExperimentOptions,
): Promise<ExperimentResult> {
  const emit = o.onEvent ?? (() => {});
  const stop = o.shouldStop ?? (() => false);
  const root = dataRoot(o.root, spec);
  const base = experimentBase(spec, o);
  const datasetOptions = {
    imageSize: base.imageSize ?? 32,
    ...(base.shapesDifficulty ? { difficulty: base.shapesDifficulty } : {}),
  };
  const result: ExperimentResult = {
    spec,
    records: [],
    runDirs: {},
    config: base,
    interrupted: false,
  };

  // Shared pieces: one VAE and one latent cache for every run (one VQ tokenizer and one code
  // cache for the discrete-token runs), one evaluation classifier.
  const vaeDir = join(root, "vae");
  const vqDir = join(root, "vqvae");
  if (!existsSync(join(vaeDir, "vae.safetensors"))) {
    emit({ kind: "stage", message: "training the shared VAE" });
    await trainVae({
      data: base.data,
      datasetOptions,
      outDir: vaeDir,
      seed: 1,
      ...(o.vaeSteps ? { steps: o.vaeSteps } : {}),
      ...base.vae,
    });
  }
  emit({ kind: "stage", message: "loading the evaluation classifier" });
  const clf = await onHostAsync(() =>
    ensureClassifier({
      dataset: base.data,
      ...(base.shapesDifficulty ? { difficulty: base.shapesDifficulty } : {}),
      imageSize: datasetOptions.imageSize,
      root: join(root, "classifiers"),
      ...(o.classifierSteps ? { steps: o.classifierSteps } : {}),
    }),
  );
  if (clf.trained) {
    emit({
      kind: "stage",
      message: `trained the evaluation classifier: held-out accuracy ${clf.report.accuracy.toFixed(3)}`,
    });
  }
  const dataset = await getDataset(base.data, datasetOptions);
  const scales = spec.guidance ?? [EVAL_GUIDANCE];
  const sampleSteps = o.sampleSteps ?? spec.sampleSteps ?? EVAL_SAMPLE_STEPS;
  const total = spec.variants.length * o.seeds.length;
  let index = 0;
  // Seed by seed, so an interrupted experiment holds whole sets of variants to report.
  for (const seed of o.seeds) {
    for (const v of spec.variants) {
      const steps = variantSteps(v, o.steps);
      index++;
      const name = runName(v, seed);
      const runOptions = variantRunOptions(root, base, v, seed, steps);
      const dir = runOptions.out;
      result.runDirs[name] = dir;
      const discrete = (v.model?.imageCodes ?? 0) > 0;
      const stale = staleFields(runOptions);
      if (stale.length > 0) {
        emit({
          kind: "stage",
          message: `${name}: the saved run differs from this protocol in ${stale.join(", ")}; training it again`,
        });
        rmSync(dir, { recursive: true, force: true });
      }
      const evalPath = (g: number) => join(dir, `eval-g${g}.json`);
      const fresh = (g: number) => {
        if (!existsSync(evalPath(g))) return null;
        const r = readJson(evalPath(g)) as RunRecord;
        return r.version === EVAL_VERSION &&
          r.steps === steps &&
          r.settings.count === o.evalCount &&
          r.settings.image.steps === sampleSteps &&
          r.settings.image.sampler === o.sampler
          ? r
          : null;
      };
      if (scales.every((g) => fresh(g) !== null)) {
        for (const g of scales) result.records.push(fresh(g)!);
        continue;
      }
      if (stop()) {
        result.interrupted = true;
        return result;
      }
      emit({ kind: "stage", message: `run ${index}/${total}: ${v.label}, seed ${seed} → ${dir}` });
      if (discrete && !existsSync(join(vqDir, VQVAE_WEIGHTS_FILE))) {
        emit({ kind: "stage", message: "training the shared VQ image tokenizer" });
        await trainVqVae({
          data: base.data,
          datasetOptions,
          outDir: vqDir,
          seed: 1,
          config: { ...base.vqvae?.config, codebookSize: v.model!.imageCodes! },
          ...(o.vqvaeSteps ? { steps: o.vqvaeSteps } : {}),
        });
      }
      const r = await runTraining({
        ...runOptions,
        onEvent: (event) => emit({ kind: "run", run: name, index, total, event }),
        shouldStop: stop,
      });
      if (r.interrupted) {
        result.interrupted = true;
        return result;
      }
      const pipeline = TransfusionPipeline.load(join(dir, "checkpoint"));
      const history = readHistory(join(dir, "metrics.jsonl"));
      const losses = finalLosses(history);
      const flops = runTrainingFlops(
        pipeline.model,
        steps,
        base.rows,
        base.seqLen,
        history.reduce((s, m) => s + (m.images ?? 0), 0),
      );
      for (const g of scales) {
        const have = fresh(g);
        if (have) {
          result.records.push(have);
          continue;
        }
        emit({ kind: "stage", message: `evaluating ${name} at guidance ${g}` });
        const ev = await evaluatePipeline(pipeline, dataset, {
          count: o.evalCount,
          image: { sampler: o.sampler, steps: sampleSteps, guidanceScale: g, seed: 7 },
          textCorpus: base.textCorpus,
          ...(o.textBytes ? { textBytes: o.textBytes } : {}),
          classifier: clf.classifier,
          // Text, captions and the image loss do not depend on the guidance scale: measured once.
          skip: g === scales[0] ? {} : { text: true, captions: true, imageLoss: true },
        });
        const first = g === scales[0] ? null : fresh(scales[0]!);
        const record: RunRecord = {
          version: EVAL_VERSION,
          variant: v.id,
          seed,
          guidance: g,
          steps,
          parameters: pipeline.model.parameterCount(),
          flops,
          finalImageLoss: losses.image,
          finalTextLoss: losses.text,
          metrics: {
            bitsPerByte: ev.bitsPerByte ?? first?.metrics.bitsPerByte ?? null,
            perplexity: ev.perplexity ?? first?.metrics.perplexity ?? null,
            generationAccuracy: ev.generationAccuracy,
            fid: ev.fid,
            fidRealFloor: ev.fidRealFloor,
            captionAccuracy: ev.captionAccuracy ?? first?.metrics.captionAccuracy ?? null,
            captionExact: ev.captionExact ?? first?.metrics.captionExact ?? null,
            captionLoss: ev.captionLoss ?? first?.metrics.captionLoss ?? null,
            imageLoss: ev.imageLoss ?? first?.metrics.imageLoss ?? null,
            checkerAccuracy: ev.checkerAccuracy,
            noiseImages: ev.noiseImages,
          },
          settings: ev.settings,
        };
        writeJson(evalPath(g), record);
        result.records.push(record);
      }
    }
  }
  // Reported variant by variant, seeds in order, as the tables read.
  const order = (r: RunRecord) => spec.variants.findIndex((v) => v.id === r.variant);
  result.records.sort((a, b) => order(a) - order(b) || a.seed - b.seed || a.guidance - b.guidance);
  return result;
}
