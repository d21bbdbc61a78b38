/** The `transfusion` command line: parses arguments and calls the library. */
import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { registerBench } from "./bench.js";
import { registerClassifier } from "./classifier.js";
import { registerDemo } from "./demo.js";
import { registerEval } from "./eval.js";
import { registerExperiment } from "./experiment.js";
import { registerGenerate } from "./generate.js";
import { registerTrain } from "./train.js";
import { registerVae } from "./vae.js";
import { registerVqVae } from "./vqvae.js";

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"));
  return pkg.version as string;
}

/** Builds the command tree (exported for tests). */
export function buildProgram(): Command {
  const program = new Command();
  program
    .name("transfusion")
    .description(
      "Train and sample Transfusion models: one transformer that predicts the next text token " +
        "and denoises image latents, in one sequence, with one loss.",
    )
    .version(version())
    .showHelpAfterError()
    .exitOverride();
  registerDemo(program);
  registerTrain(program);
  registerGenerate(program);
  registerVae(program);
  registerVqVae(program);
  registerEval(program);
  registerClassifier(program);
  registerExperiment(program);
  registerBench(program);
  return program;
}

/** Runs the CLI on argv; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: "user" });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    process.stderr.write(`transfusion: ${e instanceof Error ? e.message : String(e)}\n`);
    if (process.env.TRANSFUSION_DEBUG) console.error(e);
    return 1;
  }
}
