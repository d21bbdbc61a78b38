/**
 * The flags many commands share, declared once so that one idea has one name, one parser and
 * one help text everywhere: --backend/--json/--quiet, the image sampling flags, --checkpoint,
 * and hidden aliases that keep older spellings working.
 */
import { join, resolve } from "node:path";
import { type Command, Option } from "commander";
import type { SamplerKind } from "../diffusion/config.js";
import { DEFAULT_IMAGE_OPTIONS, type ImageOptions } from "../generate/pipeline.js";
import { MODEL_FILE, resolveCheckpointDir } from "../io/checkpoint.js";
import { SHIPPED_MODEL, shippedModelDir } from "../io/shipped.js";
import { backendFromEnv, useBackend } from "../tensor/backends/index.js";
import {
  parseBackend,
  parseInteger,
  parseNonNegativeNumber,
  parsePositiveNumber,
  parseSampler,
} from "./args.js";

/**
 * Returns cmd with --backend (applied before the action runs), --json and, when `quiet`,
 * --quiet.
 */
export function addRunFlags(cmd: Command, { quiet = false } = {}): Command {
  cmd
    .option(
      "--backend <name>",
      "js, native or webgpu (default: native when built; also TRANSFUSION_BACKEND)",
      parseBackend,
    )
    .option("--json", "print one JSON object on the last line");
  if (quiet) cmd.option("--quiet", "no progress lines");
  cmd.hook("preAction", async () => {
    const name = cmd.opts().backend ?? backendFromEnv();
    if (name) await useBackend(name);
  });
  return cmd;
}

/** The image sampling flags, by their option attribute names. */
export type SamplingFlag = "sampler" | "sampleSteps" | "guidance" | "x0Clip" | "seed";
const ALL_SAMPLING: readonly SamplingFlag[] = [
  "sampler",
  "sampleSteps",
  "guidance",
  "x0Clip",
  "seed",
];

/** Default values of the sampling flags (a command may change any, e.g. eval's seed 7). */
export interface SamplingDefaults {
  sampler: SamplerKind;
  sampleSteps: number;
  guidance: number;
  x0Clip: number;
  seed: number;
}

/** The library's defaults, as flag values (0 where the library says null: off). */
export const SAMPLING_DEFAULTS: SamplingDefaults = {
  sampler: DEFAULT_IMAGE_OPTIONS.sampler,
  sampleSteps: DEFAULT_IMAGE_OPTIONS.steps,
  guidance: DEFAULT_IMAGE_OPTIONS.guidanceScale ?? 0,
  x0Clip: DEFAULT_IMAGE_OPTIONS.x0Clip ?? 0,
  seed: DEFAULT_IMAGE_OPTIONS.seed,
};

/**
 * Returns cmd with the image sampling flags named in `only` (default all): --sampler,
 * --sample-steps, --guidance, --x0-clip and --seed, with `defaults` over the library's (a
 * default given as undefined leaves the flag without one, for callers with their own).
 */
export function addSamplingFlags(
  cmd: Command,
  defaults: Partial<SamplingDefaults> = {},
  only: readonly SamplingFlag[] = ALL_SAMPLING,
): Command {
  const d = { ...SAMPLING_DEFAULTS, ...defaults };
  const add: Record<SamplingFlag, () => void> = {
    sampler: () =>
      cmd.option(
        "--sampler <name>",
        "ddpm (respaced) | ddim | flow-euler (a flow-objective model always uses flow-euler)",
        parseSampler,
        d.sampler,
      ),
    sampleSteps: () =>
      cmd.option(
        "--sample-steps <n>",
        "denoising steps per image (the paper uses 250)",
        (v) => parseInteger(v, "--sample-steps", 1),
        d.sampleSteps,
      ),
    guidance: () =>
      cmd.option(
        "--guidance <s>",
        "classifier-free guidance scale (≥ 0; 0 turns guidance off)",
        (v) => parseNonNegativeNumber(v, "--guidance"),
        d.guidance,
      ),
    x0Clip: () =>
      cmd.option(
        "--x0-clip <c>",
        "clip the predicted clean latent to ±c at every step (≥ 0; 0 turns clipping off)",
        (v) => parseNonNegativeNumber(v, "--x0-clip"),
        d.x0Clip,
      ),
    seed: () =>
      cmd.option("--seed <n>", "sampling seed", (v) => parseInteger(v, "--seed", 0), d.seed),
  };
  for (const f of only) add[f]();
  return cmd;
}

/** Returns the library's image options for the sampling flags that were declared (0 → off). */
export function imageOptions(o: {
  sampler?: SamplerKind;
  sampleSteps?: number;
  guidance?: number;
  x0Clip?: number;
  seed?: number;
}): Partial<ImageOptions> {
  return {
    ...(o.sampler !== undefined ? { sampler: o.sampler } : {}),
    ...(o.sampleSteps !== undefined ? { steps: o.sampleSteps } : {}),
    ...(o.guidance !== undefined ? { guidanceScale: o.guidance > 0 ? o.guidance : null } : {}),
    ...(o.x0Clip !== undefined ? { x0Clip: o.x0Clip > 0 ? o.x0Clip : null } : {}),
    ...(o.seed !== undefined ? { seed: o.seed } : {}),
  };
}

/**
 * Returns cmd with the --checkpoint flag (read with `checkpointFolder`): required, or with
 * `shipped` optional, the package's shipped model standing in when it is not given.
 */
export function addCheckpointFlag(cmd: Command, { shipped = false } = {}): Command {
  const help = "a run folder (with checkpoint/ inside) or a checkpoint folder";
  if (!shipped) return cmd.requiredOption("--checkpoint <dir>", help);
  return cmd
    .option("--checkpoint <dir>", help)
    .addHelpText(
      "after",
      `\nWithout --checkpoint it uses the model shipped with the package, ${SHIPPED_MODEL} (see its MODEL_CARD.md).`,
    );
}

/**
 * Returns the checkpoint folder of a --checkpoint flag that may be absent: the folder it names,
 * else the shipped model (saying so on stderr). Throws when neither exists.
 */
export function checkpointOrShipped(dir: string | undefined): string {
  if (dir !== undefined) return checkpointFolder(dir);
  const shipped = shippedModelDir();
  if (!shipped) {
    throw new Error(
      `--checkpoint: no checkpoint given and no shipped model in this package (${SHIPPED_MODEL}); give a run or checkpoint folder`,
    );
  }
  process.stderr.write(
    `using the shipped model ${SHIPPED_MODEL} (give --checkpoint for another)\n`,
  );
  return shipped;
}

/**
 * Returns the checkpoint folder that a --checkpoint value names: `dir/checkpoint` when `dir`
 * is a run folder holding one, else `dir` itself when it is a checkpoint folder. Throws naming
 * the flag and the path when neither holds a checkpoint.
 */
export function checkpointFolder(dir: string): string {
  const inside = join(dir, "checkpoint");
  if (resolveCheckpointDir(inside)) return resolve(inside);
  if (resolveCheckpointDir(dir)) return resolve(dir);
  throw new Error(
    `${dir}: no checkpoint here (--checkpoint takes a run folder with checkpoint/ inside, or a folder holding ${MODEL_FILE}); train one with \`transfusion train\``,
  );
}

/**
 * Returns cmd with `alias` as a hidden second spelling of its option `canonical` (an older
 * name kept so scripts keep working): the value goes through the canonical parser and lands
 * under the canonical name, and errors name the spelling the user typed.
 */
export function addAlias(cmd: Command, canonical: string, alias: string): Command {
  const target = cmd.options.find((o) => o.long === canonical);
  if (!target) throw new Error(`addAlias: ${cmd.name()} has no option ${canonical}`);
  const flags = target.required ? `${alias} <value>` : target.optional ? `${alias} [value]` : alias;
  const hidden = new Option(flags).hideHelp();
  cmd.addOption(hidden);
  cmd.on(`option:${hidden.name()}`, (raw: string | undefined) => {
    const key = target.attributeName();
    let value: unknown = raw ?? true;
    if (raw !== undefined && target.parseArg) {
      try {
        value = target.parseArg(raw, cmd.getOptionValue(key));
      } catch (e) {
        throw new Error((e as Error).message.replaceAll(canonical, alias));
      }
    }
    cmd.setOptionValueWithSource(key, value, "cli");
  });
  return cmd;
}

/**
 * Returns `cmd` with the flags every trainer of a small image model takes — `--steps`,
 * `--batch`, `--lr` with their defaults shown, and with `grid` also `--grid-every` and
 * `--seed` — read back by `trainingFlagOptions`.
 */
export function addTrainerFlags(
  cmd: Command,
  defaults: { steps: number; batchSize: number; lr: number },
  { grid = false } = {},
): Command {
  cmd
    .option("--steps <n>", `training steps (default ${defaults.steps})`, (v) =>
      parseInteger(v, "--steps", 1),
    )
    .option("--batch <n>", `batch size (default ${defaults.batchSize})`, (v) =>
      parseInteger(v, "--batch", 1),
    )
    .option("--lr <x>", `peak learning rate (default ${defaults.lr})`, (v) =>
      parsePositiveNumber(v, "--lr"),
    );
  if (!grid) return cmd;
  return cmd
    .option(
      "--grid-every <n>",
      "write a reconstruction grid every n steps (0, the default: only at the end)",
      (v) => parseInteger(v, "--grid-every", 0),
    )
    .option("--seed <n>", "random seed (default 0)", (v) => parseInteger(v, "--seed", 0));
}
