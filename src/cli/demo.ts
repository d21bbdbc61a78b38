/**
 * `transfusion demo`: the main job. Trains a VAE and a Transfusion model on the default
 * `shapes` data, then draws images for held-out captions and captions held-out images, scores
 * both in pixel space, and writes grids, loss curves and a summary.
 */
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { evaluatePipeline, writeScoredGrids } from "../eval/evaluate.js";
import { swigluHidden } from "../nn/transformer.js";
import { runTraining } from "../train/run.js";
import type { RunConfig } from "../train/run-config.js";
import { parseInteger } from "./args.js";
import { printJson } from "./output.js";
import { EVAL_LABELS, formatDuration, runProgress, stageProgress } from "./progress.js";
import { addRunOptions, interruptFlag, runFromFlags } from "./train.js";

/**
 * The demo's run, what `--config` and the flags apply over (as `defaultRun` is for `train`):
 * the `demo` model size narrowed to width 128 on the `medium` shapes (one or two shapes, six
 * colours), with 2-D RoPE over the patch grid, the diffusion loss weighted λ = 10 and 18,000
 * steps, sized to finish within 15 minutes on a 2-core CPU (12.8 minutes measured). At width
 * 128 a step costs about half the width-192 preset's, so the same minutes buy nearly twice the
 * steps. Over seven seeds 2-D RoPE drew a median of 90.0% of images right against 78.8% for
 * 1-D RoPE over six, a gap within the seeds' spread (README, "The demo", and docs/RESULTS.md,
 * "The demo's recipe").
 */
export const DEMO_RUN: RunConfig = {
  data: "shapes",
  shapesDifficulty: "medium",
  preset: "demo",
  seqLen: 128,
  rows: 8,
  vocabSize: 512,
  textCorpus: "moby-dick",
  // One corpus-text position per ten image–caption positions (about 9% of a batch's rows):
  // the demo is about images, and this is the text share it was measured with.
  mixer: { textRatio: 0.1 },
  model: { lambda: 10, dim: 128, mlpHidden: swigluHidden(128), patchRope: "2d" },
  train: { steps: 18000, maxLr: 1e-3, warmupSteps: 100, checkpointEvery: 2000 },
  maxImages: 20000,
  sampleEvery: 6000,
};

export function registerDemo(program: Command): void {
  addRunOptions(
    program
      .command("demo")
      .description(
        "the main job: train on the built-in shapes data (about 13 minutes on 2 cores), then generate images from held-out captions and caption held-out images; running again resumes",
      )
      .option("--out <dir>", "run folder", "runs/demo")
      .option(
        "--eval-count <n>",
        "held-out captions and images scored",
        (v) => parseInteger(v, "--eval-count", 1),
        200,
      ),
  ).action(async (o) => {
    const t0 = Date.now();
    const out = resolve(o.out);
    const run = { ...runFromFlags(DEMO_RUN, o), out };
    // Refused now rather than after minutes of training: the scoring reads shapes only.
    if (run.data !== "shapes") {
      throw new Error(
        `--data ${run.data}: the demo scores with the shapes checker, so it trains on shapes only; use \`transfusion train\` for other data`,
      );
    }
    const flag = interruptFlag();
    const progress = runProgress(false);
    const stage = stageProgress(false);
    let r: Awaited<ReturnType<typeof runTraining>>;
    try {
      r = await runTraining({ ...run, onEvent: progress, shouldStop: flag.stop });
    } finally {
      flag.dispose();
    }
    if (r.interrupted) {
      console.log(`interrupted at step ${r.steps}; run the same command to resume`);
      return;
    }
    if (r.dataset?.name !== "shapes") {
      throw new Error(
        "demo: the scoring needs the shapes dataset (use `transfusion train` for other data)",
      );
    }
    process.stderr.write("» scoring on held-out captions and images\n");
    // Scored in pixel space by the shapes checker (no learned classifier needed here).
    const ev = await evaluatePipeline(r.pipeline, r.dataset, {
      count: Math.min(o.evalCount, r.dataset.split("test").size),
      batch: 25,
      image: { seed: 7 },
      textCorpus: null,
      classifier: null,
      onProgress: (what, done, total) => stage(EVAL_LABELS[what], done, total),
    });
    const files: Record<string, string> = { ...r.files, ...(await writeScoredGrids(out, ev)) };
    const minutes = (Date.now() - t0) / 60000;
    const summary = {
      minutes: Number(minutes.toFixed(2)),
      steps: r.steps,
      trainSeconds: Math.round(r.seconds),
      finalTextLoss: r.final?.lm ?? null,
      finalImageLoss: r.final?.image ?? null,
      vaePsnr: r.vaePsnr,
      evalCount: ev.generated.length,
      generationAccuracy: ev.checkerAccuracy,
      generationAllAttributes: ev.checkerAllAttributes,
      captionAccuracy: ev.captionAccuracy,
      captionExact: ev.captionExact,
      captionAllAttributes: ev.captionAllAttributes,
      noiseImages: ev.noiseImages,
      files,
    };
    files.summary = join(out, "summary.json");
    writeFileSync(files.summary, `${JSON.stringify(summary, null, 2)}\n`);
    if (o.json) {
      printJson(summary);
      return;
    }
    console.log(
      `\nTransfusion demo finished in ${formatDuration(minutes * 60)} (${r.steps} steps)`,
    );
    console.log(
      `  text loss ${summary.finalTextLoss?.toFixed(3)}, image loss ${summary.finalImageLoss?.toFixed(4)}`,
    );
    console.log(
      `  images matching their caption (colour and shape): ${(100 * ev.checkerAccuracy!).toFixed(1)}% of ${ev.generated.length} (every attribute: ${(100 * ev.checkerAllAttributes!).toFixed(1)}%)`,
    );
    console.log(
      `  captions naming the right colour and shape: ${(100 * ev.captionAccuracy!).toFixed(1)}% (every attribute: ${(100 * ev.captionAllAttributes!).toFixed(1)}%, word for word: ${(100 * ev.captionExact!).toFixed(1)}%)`,
    );
    console.log(`  images gone to noise: ${(100 * ev.noiseImages!).toFixed(1)}%`);
    for (const [k, v] of Object.entries(files)) console.log(`  ${k}: ${v}`);
  });
}
