/** `transfusion train`: a full training run on a built-in dataset or a JSONL document file. */

import type { Command } from "commander";
import { DATASET_NAMES, type ShapesDifficulty } from "../data/datasets/index.js";
import { readJson } from "../io/checkpoint.js";
import { PRESETS } from "../model/config.js";
import { type RunOptions, runTraining } from "../train/run.js";
import { DEFAULT_RUN, defaultRun, parseRunConfig, type RunConfig } from "../train/run-config.js";
import { type PackOptions, packRun } from "../train/run-pack.js";
import {
  parseDataOrFile,
  parseInteger,
  parsePositiveNumber,
  parsePreset,
  parseShapesDifficulty,
  parseTextCorpus,
} from "./args.js";
import { addRunFlags } from "./flags.js";
import { printJson } from "./output.js";
import { runProgress } from "./progress.js";

/** Returns a stop flag that the first Ctrl-C raises (the run then checkpoints and exits). */
export function interruptFlag(): { stop: () => boolean; dispose: () => void } {
  let requested = false;
  const onSigint = () => {
    if (requested) {
      process.stderr.write("\ninterrupted again: exiting now (the last checkpoint is intact)\n");
      process.exit(130);
    }
    requested = true;
    process.stderr.write(
      "\ninterrupt: saving a checkpoint after this step (Ctrl-C again to quit now)\n",
    );
  };
  process.on("SIGINT", onSigint);
  return { stop: () => requested, dispose: () => process.off("SIGINT", onSigint) };
}

/**
 * Returns the run a command's flags ask for, the one path from flags to a run: the command's
 * `defaults` (for `train` and `pack` `defaultRun(data)`: DEFAULT_RUN with the data's DATA_RUNS
 * entry; DEMO_RUN for `demo`), then the --config file,
 * then the flags (`applyRunFlags`), then where the run goes (--out, --no-resume, --vae). The
 * run then turns its preset and `model` overrides into the model (train/run-checks.ts).
 */
export function runFromFlags(
  defaults: RunConfig | ((data: string) => RunConfig),
  o: Record<string, unknown>,
): RunOptions {
  const run: RunOptions = {
    ...applyRunFlags(defaults, o),
    out: o.out as string,
    resume: o.resume as boolean,
  };
  if (o.vae) run.vaeFrom = o.vae as string;
  return run;
}

/**
 * Returns the run config with the flags shared by `train`, `pack` and `demo` applied over
 * `base` (and over --config). Every test is `!== undefined`: a flag given as 0 must count.
 */
export function applyRunFlags(
  defaults: RunConfig | ((data: string) => RunConfig),
  o: Record<string, unknown>,
): RunConfig {
  const file = o.config ? String(o.config) : null;
  const raw = file ? readJson(file) : null;
  // The data decides the defaults: the flag, else the file's field, else the default data.
  const fromFile = (raw as { data?: unknown } | null)?.data;
  const data =
    o.data !== undefined
      ? String(o.data)
      : typeof fromFile === "string"
        ? fromFile
        : DEFAULT_RUN.data;
  const base = typeof defaults === "function" ? defaults(data) : defaults;
  const c: RunConfig = file ? parseRunConfig(raw, base, file) : { ...base };
  const given = (k: string) => o[k] !== undefined;
  if (given("data")) c.data = o.data as string;
  if (given("preset")) c.preset = o.preset as string;
  if (given("seqLen")) c.seqLen = o.seqLen as number;
  if (given("batch")) c.rows = o.batch as number;
  if (given("maxImages")) c.maxImages = o.maxImages as number;
  if (given("shapesDifficulty")) c.shapesDifficulty = o.shapesDifficulty as ShapesDifficulty;
  if (given("sampleEvery")) c.sampleEvery = o.sampleEvery as number;
  if (given("textCorpus")) c.textCorpus = o.textCorpus === "none" ? null : (o.textCorpus as string);
  const train = { ...c.train };
  if (given("steps")) train.steps = o.steps as number;
  if (given("lr")) train.maxLr = o.lr as number;
  if (given("seed")) train.seed = o.seed as number;
  if (given("checkpointEvery")) train.checkpointEvery = o.checkpointEvery as number;
  c.train = train;
  if (given("vaeSteps")) c.vae = { ...c.vae, steps: o.vaeSteps as number };
  return c;
}

/** Returns cmd with the options shared by `train`, `pack` and `demo`. */
export function addRunOptions(cmd: Command): Command {
  cmd
    .option("--config <file>", "JSON run config (fields: see README, 'Run config files')")
    .option(
      "--data <name|file.jsonl>",
      `${DATASET_NAMES.join(" | ")} | a JSONL document file`,
      parseDataOrFile,
    )
    .option("--preset <name>", `model size: ${Object.keys(PRESETS).join(" | ")}`, parsePreset)
    .option("--steps <n>", "training steps (≥ 1)", (v) => parseInteger(v, "--steps", 1))
    .option("--batch <n>", "sequences per batch (≥ 1)", (v) => parseInteger(v, "--batch", 1))
    .option("--seq-len <n>", "positions per sequence (≥ 8)", (v) => parseInteger(v, "--seq-len", 8))
    .option("--lr <x>", "peak learning rate (> 0)", (v) => parsePositiveNumber(v, "--lr"))
    .option("--seed <n>", "random seed", (v) => parseInteger(v, "--seed", 0))
    .option("--max-images <n>", "training images used (≥ 1; default: all)", (v) =>
      parseInteger(v, "--max-images", 1),
    )
    .option(
      "--shapes-difficulty <level>",
      "shapes variant: easy (one shape, 4 colours) | medium | hard",
      parseShapesDifficulty,
    )
    .option("--text-corpus <name>", "plain text mixed in: moby-dick | sotu | none", parseTextCorpus)
    .option("--vae <dir>", "use the VAE in this folder instead of training one")
    .option("--vae-steps <n>", "VAE training steps (≥ 1)", (v) => parseInteger(v, "--vae-steps", 1))
    .option("--sample-every <n>", "steps between sample grids (0: only at the end)", (v) =>
      parseInteger(v, "--sample-every", 0),
    )
    .option("--checkpoint-every <n>", "steps between checkpoints (0: only at the end)", (v) =>
      parseInteger(v, "--checkpoint-every", 0),
    )
    .option("--no-resume", "start over even if the output folder holds a checkpoint");
  return addRunFlags(cmd);
}

export function registerTrain(program: Command): void {
  addRunOptions(
    program
      .command("train")
      .description(
        "train a Transfusion model (tokenizer, VAE, then the transformer); running again with the same --out resumes",
      )
      .option(
        "--out <dir>",
        "run folder (checkpoint/, metrics.jsonl, loss.png, samples/)",
        "runs/train",
      ),
  ).action(async (o) => {
    const run = runFromFlags(defaultRun, o);
    const flag = interruptFlag();
    try {
      const r = await runTraining({ ...run, onEvent: runProgress(false), shouldStop: flag.stop });
      const summary = {
        checkpoint: r.checkpoint,
        steps: r.steps,
        interrupted: r.interrupted,
        seconds: Math.round(r.seconds),
        finalTextLoss: r.final?.lm ?? null,
        finalImageLoss: r.final?.image ?? null,
        vaePsnr: r.vaePsnr,
        files: r.files,
      };
      if (o.json) printJson(summary);
      else {
        console.log(
          r.interrupted
            ? `interrupted at step ${r.steps}; run the same command to resume`
            : `done: ${r.steps} steps`,
        );
        for (const [k, v] of Object.entries(r.files)) console.log(`  ${k}: ${v}`);
      }
    } finally {
      flag.dispose();
    }
  });
}

export function registerPack(program: Command): void {
  addRunOptions(
    program
      .command("pack")
      .description(
        "prepare a run as `train` would (tokenizer, VAE, latents) and write its batches to shards for python/train.py (PyTorch, torchrun) instead of training; running again resumes",
      )
      .option("--out <dir>", "pack folder (pack.json, checkpoint/, shards/)", "runs/pack")
      .option("--shard-size <n>", "steps per shard file (≥ 1)", (v) =>
        parseInteger(v, "--shard-size", 1),
      )
      .addHelpText(
        "after",
        "\n--steps sets how many batches are written: one per training step.\nThen: torchrun --nproc_per_node N python/train.py --pack <dir> --out <run> (see README, 'Training at scale').",
      ),
  ).action(async (o) => {
    const opts: PackOptions = {
      ...runFromFlags(defaultRun, o),
      shardSize: o.shardSize ?? 250,
      onEvent: runProgress(false),
    };
    const r = await packRun(opts);
    if (o.json) printJson({ ...r, seconds: Math.round(r.seconds) });
    else {
      console.log(
        `packed ${r.steps} batches in ${r.shards.length} shard(s)${r.kept ? ` (${r.kept} kept from before)` : ""}: ${r.dir}`,
      );
      console.log(`  step-0 checkpoint: ${r.checkpoint}`);
    }
  });
}
