/** `transfusion classifier …`: train and measure the evaluation classifiers (accuracy, FID). */
import { join } from "node:path";
import type { Command } from "commander";
import type { ShapesDifficulty } from "../data/datasets/index.js";
import {
  CLASSIFIER_DATASETS,
  CLASSIFIER_TRAIN_DEFAULTS,
  type ClassifierReport,
  classifierDirName,
  datasetForSpec,
  loadClassifier,
  measureClassifier,
  trainClassifier,
} from "../eval/classifier.js";
import { setBackend } from "../tensor/backends/index.js";
import {
  parseBackend,
  parseNonNegativeInt,
  parsePositiveInt,
  parsePositiveNumber,
  parseShapesDifficulty,
} from "./args.js";
import { endProgress, fmt, printJson, progressLine, table } from "./output.js";
import { formatDuration } from "./progress.js";

/** Returns a dataset name that has a classifier, or throws naming the flag. */
function parseClassifierData(v: string): string {
  if (!(CLASSIFIER_DATASETS as readonly string[]).includes(v)) {
    throw new Error(`--data must be one of ${CLASSIFIER_DATASETS.join(", ")}, got "${v}"`);
  }
  return v;
}

/** Returns table rows for a report's accuracies. */
function accuracyRows(r: {
  accuracy: number;
  headAccuracy: Record<string, number>;
  testImages: number;
}): Array<[string, string]> {
  const rows: Array<[string, string]> = [
    [
      "held-out accuracy",
      `${fmt(100 * r.accuracy, 2)}% (all heads right, ${r.testImages} test images)`,
    ],
  ];
  const heads = Object.entries(r.headAccuracy);
  if (heads.length > 1)
    for (const [name, acc] of heads) rows.push([`  head ${name}`, `${fmt(100 * acc, 2)}%`]);
  return rows;
}

function datasetLabel(r: Pick<ClassifierReport, "dataset" | "difficulty">): string {
  return r.difficulty ? `${r.dataset} (${r.difficulty})` : r.dataset;
}

export function registerClassifier(program: Command): void {
  const cmd = program
    .command("classifier")
    .description(
      "train and evaluate the small CNNs that judge generated images (caption accuracy, FID features)",
    );
  cmd
    .command("train")
    .description("train a dataset's evaluation classifier and report its held-out accuracy")
    .requiredOption(
      "--data <name>",
      `dataset: ${CLASSIFIER_DATASETS.join(", ")}`,
      parseClassifierData,
    )
    .option(
      "--shapes-difficulty <level>",
      "shapes only: easy, medium or hard (default medium)",
      parseShapesDifficulty,
    )
    .option("--out <dir>", "output folder (default runs/classifiers/<dataset>[-<difficulty>])")
    .option("--steps <n>", `training steps (default ${CLASSIFIER_TRAIN_DEFAULTS.steps})`, (v) =>
      parsePositiveInt(v, "--steps"),
    )
    .option(
      "--batch-size <n>",
      `batch size (default ${CLASSIFIER_TRAIN_DEFAULTS.batchSize})`,
      (v) => parsePositiveInt(v, "--batch-size"),
    )
    .option("--lr <x>", `peak learning rate (default ${CLASSIFIER_TRAIN_DEFAULTS.lr})`, (v) =>
      parsePositiveNumber(v, "--lr"),
    )
    .option(
      "--test-images <n>",
      `held-out images measured (default ${CLASSIFIER_TRAIN_DEFAULTS.testImages})`,
      (v) => parsePositiveInt(v, "--test-images"),
    )
    .option("--seed <n>", "random seed (default 0)", (v) => parseNonNegativeInt(v, "--seed"))
    .option("--backend <name>", "js or native (default: native when built)")
    .option("--json", "print one JSON object on the last line")
    .option("--quiet", "no progress lines")
    .action(async (o) => {
      const backendName = parseBackend(o.backend);
      if (backendName) setBackend(backendName);
      if (o.shapesDifficulty !== undefined && o.data !== "shapes")
        throw new Error(`--shapes-difficulty applies only to --data shapes, not ${o.data}`);
      const difficulty: ShapesDifficulty | undefined =
        o.data === "shapes" ? (o.shapesDifficulty ?? "medium") : undefined;
      const dir: string =
        o.out ?? join("runs", "classifiers", classifierDirName(o.data, difficulty));
      const progress = progressLine(Boolean(o.quiet));
      const { report } = await trainClassifier({
        dataset: o.data,
        ...(difficulty ? { difficulty } : {}),
        ...(o.steps ? { steps: o.steps } : {}),
        ...(o.batchSize ? { batchSize: o.batchSize } : {}),
        ...(o.lr ? { lr: o.lr } : {}),
        ...(o.testImages ? { testImages: o.testImages } : {}),
        ...(o.seed !== undefined ? { seed: o.seed } : {}),
        outDir: dir,
        onProgress: (p) =>
          progress(
            `classifier step ${p.step}/${p.steps}  loss ${fmt(p.loss, 4)}  lr ${p.lr.toExponential(1)}  ` +
              `${formatDuration(p.seconds)} elapsed, ETA ${formatDuration(p.etaSeconds)}`,
          ),
      });
      endProgress();
      if (o.json) {
        printJson({ ...report, dir });
        return;
      }
      console.log(
        table([
          ["dataset", datasetLabel(report)],
          ...accuracyRows(report),
          ["steps", `${report.steps} in ${fmt(report.seconds, 1)} s`],
          ["saved to", dir],
        ]),
      );
    });

  cmd
    .command("eval")
    .description("re-measure the held-out accuracy of a saved classifier")
    .requiredOption("--dir <dir>", "folder holding classifier.json and classifier.safetensors")
    .option(
      "--test-images <n>",
      `held-out images to use (default ${CLASSIFIER_TRAIN_DEFAULTS.testImages})`,
      (v) => parsePositiveInt(v, "--test-images"),
    )
    .option("--backend <name>", "js or native (default: native when built)")
    .option("--json", "print one JSON object on the last line")
    .action(async (o) => {
      const backendName = parseBackend(o.backend);
      if (backendName) setBackend(backendName);
      const { classifier, report } = loadClassifier(o.dir);
      const ds = await datasetForSpec(classifier.spec);
      const started = performance.now();
      const r = measureClassifier(
        classifier,
        ds.split("test"),
        o.testImages ?? CLASSIFIER_TRAIN_DEFAULTS.testImages,
      );
      const seconds = (performance.now() - started) / 1000;
      const result = {
        dataset: report.dataset,
        ...(report.difficulty ? { difficulty: report.difficulty } : {}),
        ...r,
        seconds,
        dir: o.dir,
      };
      if (o.json) {
        printJson(result);
        return;
      }
      console.log(
        table([
          ["dataset", datasetLabel(report)],
          ...accuracyRows(r),
          ["measured in", `${fmt(seconds, 1)} s`],
        ]),
      );
    });
}
