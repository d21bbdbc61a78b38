/** The `transfusion` command line: parses arguments and calls the library. */
import { Command, CommanderError, Help, type Option } from "commander";
import { registerBench } from "./bench.js";
import { registerCaption } from "./caption.js";
import { registerClassifier } from "./classifier.js";
import { registerComplete } from "./complete.js";
import { registerDemo } from "./demo.js";
import { registerEval } from "./eval.js";
import { registerExperiment } from "./experiment.js";
import { registerGenerate } from "./generate.js";
import { registerRelease } from "./release.js";
import { registerServe } from "./serve.js";
import { registerPack, registerTrain } from "./train.js";
import { registerVae } from "./vae.js";
import { version } from "./version.js";
import { registerVqVae } from "./vqvae.js";

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
    .exitOverride()
    // Commander's help does not say which options are required; subcommands inherit this.
    .configureHelp({
      optionDescription(option: Option): string {
        const text = Help.prototype.optionDescription.call(this, option);
        return option.mandatory ? `${text} (required)` : text;
      },
    });
  registerDemo(program);
  registerTrain(program);
  registerPack(program);
  registerRelease(program);
  registerGenerate(program);
  registerComplete(program);
  registerCaption(program);
  registerServe(program);
  registerVae(program);
  registerVqVae(program);
  registerEval(program);
  registerClassifier(program);
  registerExperiment(program);
  registerBench(program);
  return program;
}

export { releaseDevices } from "../tensor/backends/index.js";

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
