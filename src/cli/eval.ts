/**
 * `transfusion eval`: every metric of a trained checkpoint — bits per byte on held-out text,
 * generation accuracy and FID judged by the dataset's evaluation classifier (trained on first
 * use), captioning accuracy — with grids of what was scored.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { Command } from "commander";
import { getDataset, isShapesDifficulty, type ShapesDifficulty } from "../data/datasets/index.js";
import { ensureClassifier, isClassifierDataset, loadClassifier } from "../eval/classifier.js";
import { evaluatePipeline, writeScoredGrids } from "../eval/evaluate.js";
import { TransfusionPipeline } from "../generate/pipeline.js";
import { CONFIG_FILE, readJson, resolveCheckpointDir } from "../io/checkpoint.js";
import { onHostAsync } from "../tensor/backends/index.js";
import { parseDataName, parseInteger, parseShapesDifficulty, parseTextCorpus } from "./args.js";
import {
  addCheckpointFlag,
  addRunFlags,
  addSamplingFlags,
  checkpointFolder,
  imageOptions,
} from "./flags.js";
import { fmt, printJson, table } from "./output.js";
import { EVAL_LABELS, stageProgress } from "./progress.js";

/** What a checkpoint records about its data (older checkpoints: only `data`). */
export interface RunInfo {
  data: string;
  textCorpus: string | null;
  shapesDifficulty: ShapesDifficulty | null;
  imageSize: number;
}

/** Returns what the checkpoint folder (a resolved --checkpoint) records about its run. */
export function runInfo(checkpoint: string): RunInfo {
  const found = resolveCheckpointDir(checkpoint) ?? checkpoint;
  const path = join(found, CONFIG_FILE);
  const raw = readJson(path) as {
    data?: unknown;
    run?: { textCorpus?: unknown; shapesDifficulty?: unknown; imageSize?: unknown };
  };
  if (typeof raw.data !== "string") throw new Error(`${path}: field "data" must be a string`);
  const run = raw.run ?? {};
  return {
    data: raw.data,
    textCorpus:
      typeof run.textCorpus === "string"
        ? run.textCorpus
        : run.textCorpus === null
          ? null
          : "moby-dick",
    shapesDifficulty: recordedDifficulty(run.shapesDifficulty, path),
    imageSize: typeof run.imageSize === "number" ? run.imageSize : 32,
  };
}

/** Returns the shapes level a checkpoint recorded (null: none), or throws naming the file. */
function recordedDifficulty(v: unknown, path: string): ShapesDifficulty | null {
  if (v === undefined || v === null) return null;
  if (!isShapesDifficulty(v)) {
    throw new Error(
      `${path}: field "run.shapesDifficulty" must be easy, medium, hard or null, got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

/** Below this many images FID says little: it is biased upward, more so the smaller n is. */
export const FID_MIN_COUNT = 200;

export function registerEval(program: Command): void {
  const cmd = program
    .command("eval")
    .description(
      "measure a checkpoint: bits per byte on held-out text, generation accuracy and FID (evaluation classifier), caption accuracy",
    );
  addCheckpointFlag(cmd).option(
    "--count <n>",
    `held-out captions drawn and images captioned (FID needs ${FID_MIN_COUNT} or more to mean much)`,
    (v) => parseInteger(v, "--count", 1),
    200,
  );
  addSamplingFlags(cmd, { seed: 7 });
  cmd
    .option(
      "--data <name>",
      "held-out data (default: the dataset the checkpoint was trained on)",
      parseDataName,
    )
    .option(
      "--shapes-difficulty <level>",
      "shapes variant: easy | medium | hard (default: the checkpoint's)",
      parseShapesDifficulty,
    )
    .option(
      "--text-corpus <name>",
      "held-out text: moby-dick | sotu | none (default: the checkpoint's)",
      parseTextCorpus,
    )
    .option(
      "--text-bytes <n>",
      "UTF-8 bytes of held-out text scored",
      (v) => parseInteger(v, "--text-bytes", 1),
      50_000,
    )
    .option(
      "--classifier <dir>",
      "evaluation classifier folder (default: <classifier-root>/<dataset>, trained if missing)",
    )
    .option(
      "--classifier-root <dir>",
      "where default classifiers live (default: classifiers/ in the cache folder, see README 'Caches')",
    )
    .option("--out <dir>", "folder for eval.json and the grids (default: <run>/eval)");
  addRunFlags(cmd).action(async (o) => {
    const checkpoint = checkpointFolder(o.checkpoint);
    const info = runInfo(checkpoint);
    const data: string = o.data ?? info.data;
    if (data.endsWith(".jsonl")) {
      throw new Error(
        `${checkpoint}: trained on documents (${data}); pass --data with a dataset name to score images`,
      );
    }
    const difficulty: ShapesDifficulty | null = o.shapesDifficulty ?? info.shapesDifficulty;
    const textCorpus: string | null =
      o.textCorpus === "none" ? null : (o.textCorpus ?? info.textCorpus);
    // Loaded before a missing classifier is trained (minutes), so a bad checkpoint fails now.
    const pipeline = TransfusionPipeline.load(checkpoint);
    const dataset = await getDataset(data, {
      imageSize: info.imageSize,
      ...(difficulty ? { difficulty } : {}),
    });
    const stage = stageProgress(false);
    let classifier = null;
    let classifierDir: string | null = null;
    if (o.classifier) {
      classifier = loadClassifier(o.classifier).classifier;
      classifierDir = o.classifier;
    } else if (isClassifierDataset(data)) {
      const c = await onHostAsync(() =>
        ensureClassifier({
          dataset: data,
          ...(difficulty ? { difficulty } : {}),
          imageSize: info.imageSize,
          ...(o.classifierRoot ? { root: o.classifierRoot } : {}),
          onProgress: (p) =>
            stage("training the evaluation classifier", p.step, p.steps, p.etaSeconds),
        }),
      );
      if (c.trained) {
        process.stderr.write(
          `» trained the ${data} evaluation classifier (held-out accuracy ${c.report.accuracy.toFixed(3)}) → ${c.dir}\n`,
        );
      }
      classifier = c.classifier;
      classifierDir = c.dir;
    } else {
      process.stderr.write(
        `» ${data} has no evaluation classifier: no generation accuracy or FID\n`,
      );
    }
    if (classifier && o.count < FID_MIN_COUNT) {
      process.stderr.write(
        `» warning: --count ${o.count} is small for FID: at small n FID is biased upward, so compare it only with the real-vs-real floor (fidRealFloor) measured at the same n, never with FIDs at other counts\n`,
      );
    }
    const r = await evaluatePipeline(pipeline, dataset, {
      count: o.count,
      image: imageOptions(o),
      textCorpus,
      textBytes: o.textBytes,
      classifier,
      onProgress: (what, done, total) => stage(EVAL_LABELS[what], done, total),
    });
    const out = resolve(o.out ?? join(dirname(resolve(pipeline.source)), "eval"));
    mkdirSync(out, { recursive: true });
    const files = await writeScoredGrids(out, r);
    const summary = {
      checkpoint: pipeline.source,
      bitsPerByte: r.bitsPerByte,
      perplexity: r.perplexity,
      generationAccuracy: r.generationAccuracy,
      fid: r.fid,
      fidRealFloor: r.fidRealFloor,
      captionAccuracy: r.captionAccuracy,
      captionExact: r.captionExact,
      captionAllAttributes: r.captionAllAttributes,
      captionLoss: r.captionLoss,
      checkerAccuracy: r.checkerAccuracy,
      checkerAllAttributes: r.checkerAllAttributes,
      noiseImages: r.noiseImages,
      settings: { ...r.settings, classifierDir },
      files,
    };
    files.summary = join(out, "eval.json");
    writeFileSync(files.summary, `${JSON.stringify(summary, null, 2)}\n`);
    if (o.json) {
      printJson(summary);
      return;
    }
    const pct = (x: number | null) => (x === null ? "n/a" : `${(100 * x).toFixed(1)}%`);
    console.log(
      table([
        [
          "bits per byte",
          `${fmt(r.bitsPerByte, 3)} (${textCorpus ?? "no text"}, ${r.settings.textBytes} bytes)`,
        ],
        ["perplexity", fmt(r.perplexity, 2)],
        ["generation accuracy", `${pct(r.generationAccuracy)} of ${r.settings.count}`],
        ["FID (classifier features)", fmt(r.fid, 2)],
        ["FID real vs real (floor)", fmt(r.fidRealFloor, 2)],
        ...(r.noiseImages !== null
          ? [["images gone to noise", pct(r.noiseImages)] as [string, string]]
          : []),
        ...(r.checkerAccuracy !== null
          ? [
              [
                "pixel checker accuracy",
                `${pct(r.checkerAccuracy)} (every attribute ${pct(r.checkerAllAttributes)})`,
              ] as [string, string],
            ]
          : []),
        [
          "caption accuracy",
          `${pct(r.captionAccuracy)} (every attribute ${pct(r.captionAllAttributes)}, word for word ${pct(r.captionExact)})`,
        ],
        ["caption NLL (nats/token)", fmt(r.captionLoss, 3)],
        [
          "sampler",
          `${r.settings.image.sampler} ${r.settings.image.steps} steps, guidance ${r.settings.image.guidanceScale ?? "none"}`,
        ],
        ...Object.entries(files).map(([k, v]) => [k, v] as [string, string]),
      ]),
    );
  });
}
