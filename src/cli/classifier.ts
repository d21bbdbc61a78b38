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
  defaultClassifierRoot,
  loadClassifier,
  measureClassifier,
  trainClassifier,
} from "../eval/classifier.js";
import {
  checkShapesDifficultyFor,
  parseChoice,
  parseInteger,
  parseShapesDifficulty,
  trainingFlagOptions,
} from "./args.js";
import { addAlias, addRunFlags, addTrainerFlags } from "./flags.js";
import { fmt, printJson, table } from "./output.js";
import { stageProgress } from "./progress.js";

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
  const train = cmd
    .command("train")
    .description("train a dataset's evaluation classifier and report its held-out accuracy")
    .requiredOption("--data <name>", `dataset: ${CLASSIFIER_DATASETS.join(", ")}`, (v) =>
      parseChoice(v, "--data", CLASSIFIER_DATASETS),
    )
    .option(
      "--shapes-difficulty <level>",
      "shapes only: easy, medium or hard (default medium)",
      parseShapesDifficulty,
    )
    .option(
      "--out <dir>",
      "output folder (default: classifiers/<dataset>[-<difficulty>] in the cache folder, see README 'Caches')",
    )
    .option(
      "--eval-count <n>",
      `held-out images measured after training (default ${CLASSIFIER_TRAIN_DEFAULTS.testImages})`,
      (v) => parseInteger(v, "--eval-count", 1),
    )
    .option("--seed <n>", "random seed (default 0)", (v) => parseInteger(v, "--seed", 0));
  addTrainerFlags(train, CLASSIFIER_TRAIN_DEFAULTS);
  addAlias(train, "--batch", "--batch-size");
  addAlias(train, "--eval-count", "--test-images");
  addRunFlags(train, { quiet: true }).action(async (o) => {
    checkShapesDifficultyFor(o.data, o.shapesDifficulty);
    const difficulty: ShapesDifficulty | undefined =
      o.data === "shapes" ? (o.shapesDifficulty ?? "medium") : undefined;
    const dir: string =
      o.out ?? join(defaultClassifierRoot(), classifierDirName(o.data, difficulty));
    const stage = stageProgress(Boolean(o.quiet));
    const { report } = await trainClassifier({
      dataset: o.data,
      ...(difficulty ? { difficulty } : {}),
      ...trainingFlagOptions(o),
      ...(o.evalCount !== undefined ? { testImages: o.evalCount } : {}),
      outDir: dir,
      onProgress: (p) => stage("training the classifier", p.step, p.steps, p.etaSeconds),
    });
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

  const evaluate = cmd
    .command("eval")
    .description("re-measure the held-out accuracy of a saved classifier")
    .requiredOption(
      "--classifier <dir>",
      "folder holding classifier.json and classifier.safetensors",
    )
    .option(
      "--count <n>",
      `held-out images to use (default ${CLASSIFIER_TRAIN_DEFAULTS.testImages})`,
      (v) => parseInteger(v, "--count", 1),
    );
  addAlias(evaluate, "--classifier", "--dir");
  addAlias(evaluate, "--count", "--test-images");
  addRunFlags(evaluate).action(async (o) => {
    const { classifier, report } = loadClassifier(o.classifier);
    const ds = await datasetForSpec(classifier.spec);
    const started = performance.now();
    const r = measureClassifier(
      classifier,
      ds.split("test"),
      o.count ?? CLASSIFIER_TRAIN_DEFAULTS.testImages,
    );
    const seconds = (performance.now() - started) / 1000;
    const result = {
      dataset: report.dataset,
      ...(report.difficulty ? { difficulty: report.difficulty } : {}),
      ...r,
      seconds,
      dir: o.classifier,
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
