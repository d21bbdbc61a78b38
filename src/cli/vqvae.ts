/** `transfusion vqvae …`: train the VQ image tokenizer and measure its reconstructions and codes. */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { DATASET_NAMES, type DatasetOptions, getDataset } from "../data/datasets/index.js";
import { readJson } from "../io/checkpoint.js";
import { loadVqVae, VQVAE_JSON_FILE } from "../io/vqvae-files.js";
import {
  evaluateVqVaeOnTestSplit,
  trainVqVae,
  VQVAE_TRAIN_DEFAULTS,
} from "../train/vqvae-train.js";
import {
  checkShapesDifficultyFor,
  parseDataName,
  parseInteger,
  parseShapesDifficulty,
  trainingFlagOptions,
} from "./args.js";
import { addRunFlags, addTrainerFlags } from "./flags.js";
import { fmt, printJson, table } from "./output.js";
import { stageProgress } from "./progress.js";

/** Returns the dataset options of the flags, refusing --shapes-difficulty for other data. */
function datasetOptions(
  data: string,
  o: { shapesDifficulty?: string; imageSize?: number },
): DatasetOptions {
  checkShapesDifficultyFor(data, o.shapesDifficulty);
  return {
    ...(o.shapesDifficulty
      ? { difficulty: o.shapesDifficulty as DatasetOptions["difficulty"] }
      : {}),
    ...(o.imageSize !== undefined ? { imageSize: o.imageSize } : {}),
  };
}

/** Returns what vqvae.json records of the training data, or nothing when it holds none. */
function recordedData(dir: string): { data?: string; datasetOptions?: DatasetOptions } {
  if (!existsSync(join(dir, VQVAE_JSON_FILE))) return {};
  const doc = readJson(join(dir, VQVAE_JSON_FILE)) as {
    training?: { data?: unknown; datasetOptions?: unknown };
  };
  const t = doc?.training;
  const opts = t?.datasetOptions;
  return {
    ...(typeof t?.data === "string" ? { data: t.data } : {}),
    ...(typeof opts === "object" && opts !== null
      ? { datasetOptions: opts as DatasetOptions }
      : {}),
  };
}

/** Returns table rows for held-out PSNR, usage and perplexity. */
function metricRows(
  r: { psnr: number; usage: number; perplexity: number },
  codebookSize: number,
): Array<[string, string]> {
  return [
    ["held-out PSNR", `${fmt(r.psnr, 2)} dB`],
    [
      "codebook usage",
      `${fmt(100 * r.usage, 1)}% (${Math.round(r.usage * codebookSize)} of ${codebookSize} codes)`,
    ],
    ["code perplexity", fmt(r.perplexity, 1)],
  ];
}

export function registerVqVae(program: Command): void {
  const vq = program
    .command("vqvae")
    .description("train and evaluate the VQ image tokenizer (discrete image tokens)");
  const train = vq
    .command("train")
    .description(
      "train a VQ tokenizer on a dataset, write DIR/vqvae.safetensors, vqvae.json and reconstruction grids",
    )
    .requiredOption("--data <name>", `dataset: ${DATASET_NAMES.join(", ")}`, parseDataName)
    .requiredOption("--out <dir>", "output folder")
    .option("--codebook-size <k>", "number of codes (default 512)", (v) =>
      parseInteger(v, "--codebook-size", 1),
    )
    .option("--code-dim <d>", "length of each code vector (default 16)", (v) =>
      parseInteger(v, "--code-dim", 1),
    )
    .option("--levels <n>", "downsamplings: codes are 2^levels smaller per side (default 3)", (v) =>
      parseInteger(v, "--levels", 1),
    )
    .option(
      "--shapes-difficulty <level>",
      "shapes only: easy, medium or hard (default medium)",
      parseShapesDifficulty,
    )
    .option("--image-size <n>", "image side in pixels (default: the dataset's)", (v) =>
      parseInteger(v, "--image-size", 1),
    );
  addTrainerFlags(train, VQVAE_TRAIN_DEFAULTS, { grid: true });
  addRunFlags(train, { quiet: true }).action(async (o) => {
    const stage = stageProgress(Boolean(o.quiet));
    const r = await trainVqVae({
      data: o.data,
      datasetOptions: datasetOptions(o.data, o),
      outDir: o.out,
      config: {
        ...(o.codebookSize !== undefined ? { codebookSize: o.codebookSize } : {}),
        ...(o.codeDim !== undefined ? { codeDim: o.codeDim } : {}),
        ...(o.levels !== undefined ? { levels: o.levels } : {}),
      },
      ...trainingFlagOptions(o),
      onProgress: (p) =>
        stage(
          "training the VQ tokenizer",
          p.step,
          p.steps,
          p.etaSeconds,
          `loss ${fmt(p.loss, 4)}  recon ${fmt(p.recon, 4)}  live codes ${fmt(100 * p.live, 0)}%  lr ${p.lr.toExponential(1)}`,
        ),
    });
    const K = r.vqvae.config.codebookSize;
    if (o.json) {
      const { psnr, usage, perplexity, steps, seconds, restarts, files } = r;
      printJson({ psnr, usage, perplexity, codebookSize: K, steps, seconds, restarts, files });
      return;
    }
    console.log(
      table([
        ...metricRows(r, K),
        ["steps", `${r.steps} in ${fmt(r.seconds, 1)} s (${r.restarts} code restarts)`],
        ["files", r.files.join("\n" + " ".repeat(17))],
      ]),
    );
  });

  const evaluate = vq
    .command("eval")
    .description("report held-out PSNR, codebook usage and code perplexity of a trained tokenizer")
    .requiredOption("--vqvae <dir>", "folder holding vqvae.safetensors")
    .option(
      "--data <name>",
      `dataset: ${DATASET_NAMES.join(", ")} (default: the one it was trained on)`,
      parseDataName,
    )
    .option(
      "--shapes-difficulty <level>",
      "shapes only: easy, medium or hard (default: as trained)",
      parseShapesDifficulty,
    )
    .option("--image-size <n>", "image side in pixels (default: as trained)", (v) =>
      parseInteger(v, "--image-size", 1),
    )
    .option("--count <n>", "held-out images to use (default 1000)", (v) =>
      parseInteger(v, "--count", 1),
    );
  addRunFlags(evaluate).action(async (o) => {
    const model = loadVqVae(o.vqvae);
    const recorded = recordedData(o.vqvae);
    const data: string | undefined = o.data ?? recorded.data;
    if (data === undefined || !(DATASET_NAMES as readonly string[]).includes(data)) {
      throw new Error(
        `${join(o.vqvae, VQVAE_JSON_FILE)} names no built-in training dataset; pass --data`,
      );
    }
    // Flags override what was recorded, which applies only to the same dataset.
    const base = data === recorded.data ? (recorded.datasetOptions ?? {}) : {};
    const ds = await getDataset(data, { ...base, ...datasetOptions(data, o) });
    const started = performance.now();
    const r = evaluateVqVaeOnTestSplit(model, ds, o.count ?? 1000, o.vqvae);
    const seconds = (performance.now() - started) / 1000;
    const K = model.config.codebookSize;
    if (o.json) {
      printJson({ ...r, codebookSize: K, data, seconds });
      return;
    }
    console.log(
      table([
        ...metricRows(r, K),
        ["measured on", `${r.images} ${data} test images in ${fmt(seconds, 1)} s`],
      ]),
    );
  });
}
