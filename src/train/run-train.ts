/**
 * The training stage of a run: the Transfusion model trained (or resumed) with its log,
 * loss curves, sample grids and checkpoints, whose config.json records the run's options,
 * its image autoencoder and the fingerprints of its tokenizer and autoencoder.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { ImageTextDataset } from "../data/datasets/types.js";
import { writeImageGrid } from "../data/grid.js";
import type { MixerOptions, mixBatch } from "../data/mixer.js";
import type { Tokenizer } from "../data/tokenizer.js";
import { cosineSchedule } from "../diffusion/schedule.js";
import { TransfusionPipeline } from "../generate/pipeline.js";
import {
  CHECKPOINT_FORMAT,
  CHECKPOINT_VERSION,
  CONFIG_FILE,
  checkpointFingerprints,
  TOKENIZER_FILE,
  writeJson,
} from "../io/checkpoint.js";
import { saveVae, VAE_WEIGHTS_FILE } from "../io/vae-files.js";
import { saveVqVae, VQVAE_WEIGHTS_FILE } from "../io/vqvae-files.js";
import type { TransfusionConfig } from "../model/config.js";
import { Transfusion } from "../model/transfusion.js";
import { VqVae } from "../model/vqvae.js";
import { Rng } from "../tensor/rng.js";
import type { RunOptions, RunResult } from "./run.js";
import type { Autoencoder } from "./run-autoencoder.js";
import { runRecord, runSettings } from "./run-checks.js";
import { appendHistory, readHistory, rewriteHistory, writeLossCurves } from "./run-log.js";
import { loadWeights, type StepMetrics, Trainer, type TrainSettings } from "./trainer.js";

/** Everything the training stage of a run needs, prepared by runTraining. */
export interface TrainStage {
  t0: number;
  out: string;
  ckptDir: string;
  /** The checkpoint folder resumed from, or null for a new run. */
  existing: string | null;
  files: Record<string, string>;
  config: TransfusionConfig;
  mixer: MixerOptions;
  tokenizer: Tokenizer;
  /** null for a text-only run. */
  ae: Autoencoder | null;
  vaePsnr: number | null;
  dataset: ImageTextDataset | null;
  sampleCaptions: string[];
  batchFor: (rng: Rng) => ReturnType<typeof mixBatch>;
}

/** Returns the run's result after training (or resuming) with logs, curves and checkpoints. */
export async function trainStage(o: RunOptions, s: TrainStage): Promise<RunResult> {
  const emit = o.onEvent ?? (() => {});
  const { out, ckptDir, files, config, tokenizer, ae } = s;
  const settings = runSettings(o);
  const model = new Transfusion(config, new Rng(settings.seed));
  const metricsPath = join(out, "metrics.jsonl");
  const sampleModel = new Transfusion(config, new Rng(0));
  const sampler = new TransfusionPipeline(sampleModel, tokenizer, ae, out);
  if (ae) mkdirSync(join(out, "samples"), { recursive: true });
  const writeStatic = checkpointFilesWriter(o, s, settings);
  const writeSamples = async (trainer: Trainer) => {
    // A text-only model draws nothing.
    if (!ae) return;
    await trainer.toHost();
    loadWeights(sampleModel, trainer.samplingWeights());
    const { images } = await sampler.textToImage(s.sampleCaptions, {
      sampler: "ddim",
      steps: 25,
      guidanceScale: 3,
      seed: 1,
    });
    const path = join(out, "samples", `step-${String(trainer.step).padStart(6, "0")}.png`);
    await writeImageGrid(path, images, {
      columns: Math.min(8, images.length),
      captions: s.sampleCaptions,
    });
    files.samples = path;
    emit({ kind: "file", what: "samples", path });
  };
  const history: StepMetrics[] = [];
  const writeCurves = async () => {
    const png = await writeLossCurves(out, history);
    if (png) files.lossCurve = png;
  };

  const trainer = new Trainer({
    model,
    settings,
    schedule: cosineSchedule({ T: config.diffusionSteps }),
    batchFor: (_step, rng) => s.batchFor(rng),
    checkpointDir: ckptDir,
    writeStatic,
    shouldStop: o.shouldStop ?? (() => false),
    onStep: async (m) => {
      history.push(m);
      appendHistory(metricsPath, `${JSON.stringify({ ...m, time: new Date().toISOString() })}\n`);
      const elapsed = (Date.now() - stepStart) / 1000;
      const done = trainer.step - startStep;
      const eta = done > 0 ? (elapsed / done) * (settings.steps - trainer.step) : 0;
      emit({ kind: "step", metrics: m, steps: settings.steps, etaSeconds: eta });
      if (o.sampleEvery > 0 && trainer.step % o.sampleEvery === 0 && trainer.step < settings.steps)
        await writeSamples(trainer);
    },
    onCheckpoint: async (dir) => {
      emit({ kind: "file", what: "checkpoint", path: dir });
      await writeCurves();
    },
  });
  let startStep = 0;
  if (s.existing) {
    startStep = trainer.resume(ckptDir);
    emit({ kind: "stage", message: `resuming from step ${startStep} (${s.existing})` });
    const warn = (message: string) => emit({ kind: "stage", message: `warning: ${message}` });
    history.push(...readHistory(metricsPath, startStep, warn));
    // Keep the log consistent with the checkpoint: drop lines past the resumed step.
    rewriteHistory(metricsPath, history);
  } else {
    rewriteHistory(metricsPath, []);
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
  await trainer.toHost();
  loadWeights(sampleModel, trainer.samplingWeights());
  const last = history.slice(-20);
  const avg = (f: (m: StepMetrics) => number) =>
    last.reduce((sum, m) => sum + f(m), 0) / Math.max(1, last.length);
  return {
    pipeline: sampler,
    checkpoint: ckptDir,
    steps: r.steps,
    interrupted: r.interrupted,
    seconds: (Date.now() - s.t0) / 1000,
    final: last.length ? { lm: avg((m) => m.lm), image: avg((m) => m.image) } : null,
    files,
    vaePsnr: s.vaePsnr,
    dataset: s.dataset,
  };
}

/**
 * Returns the writer of a run checkpoint's non-weight files (config.json, tokenizer.json and the
 * autoencoder) into a folder, for the trainer here and for `transfusion pack`'s step-0
 * checkpoint, so both describe a run the same way.
 */
export function checkpointFilesWriter(
  o: RunOptions,
  s: Pick<TrainStage, "config" | "mixer" | "tokenizer" | "ae">,
  settings: TrainSettings,
): (dir: string, step: number) => void {
  const { config, tokenizer, ae } = s;
  // Computed once: the tokenizer and the autoencoder do not change while training.
  const fingerprints = checkpointFingerprints(tokenizer, ae);
  const autoencoder = ae ? (ae instanceof VqVae ? VQVAE_WEIGHTS_FILE : VAE_WEIGHTS_FILE) : null;

  return (dir: string, step: number) => {
    tokenizer.save(join(dir, TOKENIZER_FILE));
    if (ae instanceof VqVae) saveVqVae(ae, dir);
    else if (ae) saveVae(ae, dir);
    writeJson(join(dir, CONFIG_FILE), {
      format: CHECKPOINT_FORMAT,
      version: CHECKPOINT_VERSION,
      step,
      model: config,
      train: settings,
      mixer: s.mixer,
      data: o.data,
      // The options the run was started with: what evaluation needs to rebuild the held-out
      // data (see `transfusion eval`), and what a resume must ask for again.
      run: runRecord(o),
      // The image autoencoder's weights file; null for a model trained on text only.
      autoencoder,
      // The content of the checkpoint's other files, so one swapped in from another run is refused.
      fingerprints,
      special: {
        boi: tokenizer.boiId,
        eoi: tokenizer.eoiId,
        pad: tokenizer.padId,
        eod: tokenizer.eodId,
      },
    });
  };
}
