/** Flag parsers shared by the commands; each error names the flag. */
import type { Command } from "commander";
import {
  DATASET_NAMES,
  isShapesDifficulty,
  type ShapesDifficulty,
} from "../data/datasets/index.js";
import type { SamplerKind } from "../diffusion/config.js";
import { type BackendName, setBackend } from "../tensor/backends/index.js";

/** Returns an integer ≥ 0 parsed from a flag value. */
export function parseNonNegativeInt(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} must be an integer ≥ 0, got "${v}"`);
  return n;
}

/** Returns a finite number parsed from a flag value. */
export function parseNumber(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`${flag} must be a number, got "${v}"`);
  return n;
}

/** Returns a positive finite number parsed from a flag value, or throws naming the flag. */
export function parsePositiveNumber(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0)
    throw new Error(`${flag} must be a positive number, got "${v}"`);
  return n;
}

/** Returns a dataset name from the value of --data, checked against the registry. */
export function parseDataName(v: string): string {
  if (!(DATASET_NAMES as readonly string[]).includes(v)) {
    throw new Error(`--data must be one of ${DATASET_NAMES.join(", ")}, got "${v}"`);
  }
  return v;
}

/** Returns a shapes difficulty from the value of --shapes-difficulty. */
export function parseShapesDifficulty(v: string): ShapesDifficulty {
  if (!isShapesDifficulty(v))
    throw new Error(`--shapes-difficulty must be easy, medium or hard, got "${v}"`);
  return v;
}

/** Returns a positive integer parsed from a flag value, or throws naming the flag. */
export function parsePositiveInt(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0)
    throw new Error(`${flag} must be a positive integer, got "${v}"`);
  return n;
}

/** Returns the backend name from a flag value, or undefined. */
export function parseBackend(v: string | undefined): BackendName | undefined {
  if (v === undefined) return undefined;
  if (v !== "js" && v !== "native") throw new Error(`--backend must be js or native, got "${v}"`);
  return v;
}

/** Selects the backend that a command's --backend flag names, if it names one. */
export function useBackendFlag(o: { backend?: string }): void {
  const name = parseBackend(o.backend);
  if (name) setBackend(name);
}

/** Returns cmd with --backend and --json, and --quiet unless `quiet` is false. */
export function addRunFlags(cmd: Command, quiet = true): Command {
  cmd
    .option("--backend <name>", "js or native (default: native when built)")
    .option("--json", "print one JSON object on the last line");
  return quiet ? cmd.option("--quiet", "no progress lines") : cmd;
}

/**
 * Returns the trainer options that the shared training flags set (--steps, --batch, --lr,
 * --grid-every, --seed), leaving out the ones not given so the trainer's defaults apply.
 */
export function trainingFlagOptions(o: {
  steps?: number;
  batch?: number;
  lr?: number;
  gridEvery?: number;
  seed?: number;
}): { steps?: number; batchSize?: number; lr?: number; gridEvery?: number; seed?: number } {
  return {
    ...(o.steps ? { steps: o.steps } : {}),
    ...(o.batch ? { batchSize: o.batch } : {}),
    ...(o.lr ? { lr: o.lr } : {}),
    ...(o.gridEvery ? { gridEvery: o.gridEvery } : {}),
    ...(o.seed !== undefined ? { seed: o.seed } : {}),
  };
}

/** Returns a sampler name from a flag value. */
export function parseSampler(v: string): SamplerKind {
  if (v !== "ddpm" && v !== "ddim" && v !== "flow-euler")
    throw new Error(`--sampler must be ddpm, ddim or flow-euler, got "${v}"`);
  return v;
}

/** Returns a list of integers ≥ 0 from a comma-separated flag value ("0,1,2"). */
export function parseIntList(v: string, flag: string): number[] {
  const items = v.split(",").map((x) => x.trim());
  if (items.length === 0 || items.some((x) => x === "")) {
    throw new Error(`${flag} must be comma-separated integers ≥ 0, got "${v}"`);
  }
  const out = items.map((x) => parseNonNegativeInt(x, flag));
  if (new Set(out).size !== out.length) throw new Error(`${flag} lists a value twice: "${v}"`);
  return out;
}
