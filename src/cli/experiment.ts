/**
 * `transfusion experiment NAME`: the paper's comparisons at small scale. Trains every variant
 * for every seed (resumable; runs shared between experiments), evaluates each, and writes the
 * tables and plots into docs/RESULTS.md and docs/results/.
 */
import type { Command } from "commander";
import { writeReport } from "../experiment/report.js";
import { runExperiment } from "../experiment/run.js";
import { EXPERIMENT_NAMES, EXPERIMENTS, getExperiment } from "../experiment/specs.js";
import { parseInteger, parseIntList } from "./args.js";
import { addRunFlags, addSamplingFlags } from "./flags.js";
import { printJson } from "./output.js";
import { formatDuration, runProgress } from "./progress.js";
import { interruptFlag } from "./train.js";

export function registerExperiment(program: Command): void {
  const cmd = program
    .command("experiment")
    .description(
      `reproduce a comparison from the paper at small scale and write docs/RESULTS.md: ${EXPERIMENT_NAMES.join(" | ")} | all | list (about 3 minutes per run on 2 cores; rerun to resume)`,
    )
    .argument("<name>", `${EXPERIMENT_NAMES.join(", ")}, all, or list`)
    .option("--root <dir>", "folder for the shared VAE, classifier and runs", "runs/experiments")
    .option(
      "--seeds <list>",
      "training seeds, comma-separated",
      (v) => parseIntList(v, "--seeds"),
      [0, 1, 2],
    )
    .option(
      "--steps <n>",
      "training steps of every run (budgets of the chameleon comparison are multiples of it)",
      (v) => parseInteger(v, "--steps", 1),
      2500,
    )
    .option(
      "--eval-count <n>",
      "held-out captions and images per evaluation",
      (v) => parseInteger(v, "--eval-count", 1),
      500,
    );
  // Guidance, clipping and seeds of evaluation are part of each experiment's protocol, and
  // so is the default number of steps (undefined here: the experiment's own).
  addSamplingFlags(cmd, { sampleSteps: undefined }, ["sampler", "sampleSteps"]);
  cmd.addHelpText(
    "after",
    "\n--sample-steps defaults to each experiment's own: the paper's 250 for chameleon, 100 for the ablations.",
  );
  cmd.option("--docs <dir>", "folder of RESULTS.md and results/", "docs");
  addRunFlags(cmd).action(async (name: string, o) => {
    if (name === "list") {
      for (const e of Object.values(EXPERIMENTS)) {
        const runs = e.variants.length * o.seeds.length;
        console.log(
          `${e.name.padEnd(10)} ${e.title} (${runs} runs with ${o.seeds.length} seeds; baseline runs are shared)`,
        );
      }
      return;
    }
    const specs = name === "all" ? Object.values(EXPERIMENTS) : [getExperiment(name)];
    const t0 = Date.now();
    const flag = interruptFlag();
    const progress = runProgress(false);
    const summaries: Array<Record<string, unknown>> = [];
    try {
      for (const spec of specs) {
        process.stderr.write(`» experiment ${spec.name}: ${spec.title}\n`);
        const r = await runExperiment(spec, {
          root: o.root,
          seeds: o.seeds,
          steps: o.steps,
          evalCount: o.evalCount,
          sampler: o.sampler,
          sampleSteps: o.sampleSteps,
          shouldStop: flag.stop,
          onEvent: (e) => {
            if (e.kind === "stage") progress({ kind: "stage", message: e.message });
            else progress(e.event);
          },
        });
        if (r.interrupted) {
          console.log(`interrupted during ${spec.name}; run the same command to resume`);
          return;
        }
        const files = await writeReport(r, o.docs);
        summaries.push({ experiment: spec.name, records: r.records, files });
        if (!o.json) {
          console.log(
            `\n${spec.name}: ${r.records.length} evaluations; wrote ${Object.values(files).join(", ")}`,
          );
        }
      }
    } finally {
      flag.dispose();
    }
    if (o.json) printJson({ minutes: (Date.now() - t0) / 60000, experiments: summaries });
    else console.log(`done in ${formatDuration((Date.now() - t0) / 1000)}`);
  });
}
