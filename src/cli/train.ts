/** `transfusion train`: a full training run on a built-in dataset or a JSONL document file. */

import type { Command } from "commander";
import { setBackend } from "../tensor/backends/index.js";
import { type RunOptions, runTraining } from "../train/run.js";
import { loadRunConfig, RUN_PRESETS, type RunConfig } from "../train/run-config.js";
import {
  parseBackend,
  parseNonNegativeInt,
  parseNumber,
  parsePositiveInt,
  parseShapesDifficulty,
} from "./args.js";
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

/** Applies the flags shared by `train` and `demo` over a run config. */
export function applyRunFlags(base: RunConfig, o: Record<string, unknown>): RunConfig {
  const c: RunConfig = o.config ? loadRunConfig(String(o.config), base) : { ...base };
  if (o.data) c.data = String(o.data);
  if (o.preset) c.preset = String(o.preset);
  if (o.seqLen) c.seqLen = o.seqLen as number;
  if (o.batch) c.rows = o.batch as number;
  if (o.maxImages) c.maxImages = o.maxImages as number;
  if (o.shapesDifficulty !== undefined) {
    c.shapesDifficulty = parseShapesDifficulty(String(o.shapesDifficulty));
  }
  if (o.sampleEvery !== undefined) c.sampleEvery = o.sampleEvery as number;
  if (o.textCorpus !== undefined)
    c.textCorpus = o.textCorpus === "none" ? null : String(o.textCorpus);
  const train = { ...c.train };
  if (o.steps) train.steps = o.steps as number;
  if (o.lr) train.maxLr = o.lr as number;
  if (o.seed !== undefined) train.seed = o.seed as number;
  if (o.checkpointEvery !== undefined) train.checkpointEvery = o.checkpointEvery as number;
  c.train = train;
  if (o.vaeSteps) c.vae = { ...c.vae, steps: o.vaeSteps as number };
  return c;
}

/** Adds the options shared by `train` and `demo`. */
export function addRunOptions(cmd: Command): Command {
  return cmd
    .option("--config <file>", "JSON run config (fields: see README, 'Config files')")
    .option(
      "--data <name|file.jsonl>",
      "shapes | mnist | fashion-mnist | emoji | a JSONL document file",
    )
    .option("--preset <name>", "model preset: tiny | demo | small | base | paper-0.16B")
    .option("--steps <n>", "training steps", (v) => parsePositiveInt(v, "--steps"))
    .option("--batch <n>", "sequences per batch", (v) => parsePositiveInt(v, "--batch"))
    .option("--seq-len <n>", "positions per sequence", (v) => parsePositiveInt(v, "--seq-len"))
    .option("--lr <x>", "peak learning rate", (v) => parseNumber(v, "--lr"))
    .option("--seed <n>", "random seed", (v) => parseNonNegativeInt(v, "--seed"))
    .option("--max-images <n>", "training images used", (v) => parsePositiveInt(v, "--max-images"))
    .option(
      "--shapes-difficulty <level>",
      "shapes variant: easy (one shape, 4 colours) | medium | hard",
    )
    .option("--text-corpus <name>", "moby-dick | sotu | none")
    .option("--vae <dir>", "use the VAE in this folder instead of training one")
    .option("--vae-steps <n>", "VAE training steps", (v) => parsePositiveInt(v, "--vae-steps"))
    .option("--sample-every <n>", "steps between sample grids (0: only at the end)", (v) =>
      parseNonNegativeInt(v, "--sample-every"),
    )
    .option("--checkpoint-every <n>", "steps between checkpoints (0: only at the end)", (v) =>
      parseNonNegativeInt(v, "--checkpoint-every"),
    )
    .option("--no-resume", "start over even if the output folder holds a checkpoint")
    .option("--backend <name>", "js or native (default: native when built)")
    .option("--json", "print one JSON object on the last line");
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
    const backend = parseBackend(o.backend);
    if (backend) setBackend(backend);
    const cfg = applyRunFlags(RUN_PRESETS.default!(), o);
    const flag = interruptFlag();
    try {
      const opts: RunOptions = {
        ...cfg,
        out: o.out,
        resume: o.resume,
        onEvent: runProgress(false),
        shouldStop: flag.stop,
      };
      if (o.vae) opts.vaeFrom = o.vae;
      const r = await runTraining(opts);
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
