/**
 * Flag parsers shared by the commands. There is one parser per kind of value (integer,
 * positive number, non-negative number, one of a list), each taking the flag's name and range,
 * so every error names the flag and the values it accepts.
 */
import { DATASET_NAMES, type ShapesDifficulty, TEXT_CORPUS_NAMES } from "../data/datasets/index.js";
import type { SamplerKind } from "../diffusion/config.js";
import { PRESETS } from "../model/config.js";
import type { BackendName } from "../tensor/backends/index.js";

/** Returns "≥ min" or "from min to max" for an error message. */
function range(min: number, max: number): string {
  return max === Infinity ? `≥ ${min}` : `from ${min} to ${max}`;
}

/**
 * Returns the integer in a flag value, or throws naming the flag and its range [min, max].
 * Commands pass min 1 where 0 would mean nothing (steps, batch sizes, counts) and min 0 where
 * 0 means "none" or "only at the end" (seeds, intervals).
 */
export function parseInteger(v: string, flag: string, min = 0, max = Infinity): number {
  const n = v.trim() === "" ? Number.NaN : Number(v);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new Error(`${flag} must be an integer ${range(min, max)}, got "${v}"`);
  return n;
}

/** Returns the number > 0 (and ≤ max) in a flag value, or throws naming the flag and range. */
export function parsePositiveNumber(v: string, flag: string, max = Infinity): number {
  const n = v.trim() === "" ? Number.NaN : Number(v);
  if (!Number.isFinite(n) || n <= 0 || n > max) {
    const want = max === Infinity ? "a number > 0" : `a number > 0 and ≤ ${max}`;
    throw new Error(`${flag} must be ${want}, got "${v}"`);
  }
  return n;
}

/** Returns the number ≥ 0 in a flag value (0 is meaningful: "off"), or throws naming the flag. */
export function parseNonNegativeNumber(v: string, flag: string): number {
  const n = v.trim() === "" ? Number.NaN : Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${flag} must be a number ≥ 0, got "${v}"`);
  return n;
}

/** Returns `v` if it is one of `choices`, or throws naming the flag and every choice. */
export function parseChoice<T extends string>(v: string, flag: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(v))
    throw new Error(`${flag} must be one of ${choices.join(", ")}, got "${v}"`);
  return v as T;
}

/** Returns a built-in dataset name from the value of --data. */
export function parseDataName(v: string): string {
  return parseChoice(v, "--data", DATASET_NAMES);
}

/** Returns a dataset name or a .jsonl document file from the value of --data (train, demo). */
export function parseDataOrFile(v: string): string {
  if (v.endsWith(".jsonl")) return v;
  if ((DATASET_NAMES as readonly string[]).includes(v)) return v;
  throw new Error(
    `--data must be one of ${DATASET_NAMES.join(", ")} or a .jsonl document file, got "${v}"`,
  );
}

/** Returns a model size, a name in PRESETS (model/config.ts), from the value of --preset. */
export function parsePreset(v: string): string {
  return parseChoice(v, "--preset", Object.keys(PRESETS));
}

/**
 * Returns a text corpus name or "none" from the value of --text-corpus (callers map "none" to
 * null: commander turns a parser's null into "").
 */
export function parseTextCorpus(v: string): string {
  return parseChoice(v, "--text-corpus", [...TEXT_CORPUS_NAMES, "none"]);
}

/** Returns nothing; throws when --shapes-difficulty was given for data other than shapes. */
export function checkShapesDifficultyFor(data: string, difficulty: string | undefined): void {
  if (difficulty !== undefined && data !== "shapes")
    throw new Error(`--shapes-difficulty applies only to --data shapes, not ${data}`);
}

/** Returns a shapes difficulty from the value of --shapes-difficulty. */
export function parseShapesDifficulty(v: string): ShapesDifficulty {
  return parseChoice(v, "--shapes-difficulty", ["easy", "medium", "hard"] as const);
}

/** Returns the backend name from the value of --backend. */
export function parseBackend(v: string): BackendName {
  return parseChoice(v, "--backend", ["js", "native", "webgpu"] as const);
}

/** Returns a sampler name from the value of --sampler. */
export function parseSampler(v: string): SamplerKind {
  return parseChoice(v, "--sampler", ["ddpm", "ddim", "flow-euler"] as const);
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
  // `!== undefined`, not truthiness: a flag given as 0 (--grid-every 0, --seed 0) must count.
  return {
    ...(o.steps !== undefined ? { steps: o.steps } : {}),
    ...(o.batch !== undefined ? { batchSize: o.batch } : {}),
    ...(o.lr !== undefined ? { lr: o.lr } : {}),
    ...(o.gridEvery !== undefined ? { gridEvery: o.gridEvery } : {}),
    ...(o.seed !== undefined ? { seed: o.seed } : {}),
  };
}

/** Returns a list of integers ≥ 0 from a comma-separated flag value ("0,1,2"). */
export function parseIntList(v: string, flag: string): number[] {
  const items = v.split(",").map((x) => x.trim());
  if (items.length === 0 || items.some((x) => x === "")) {
    throw new Error(`${flag} must be comma-separated integers ≥ 0, got "${v}"`);
  }
  const out = items.map((x) => parseInteger(x, flag, 0));
  if (new Set(out).size !== out.length) throw new Error(`${flag} lists a value twice: "${v}"`);
  return out;
}
