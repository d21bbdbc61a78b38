/** Flag parsers shared by the commands; each error names the flag. */
import { isShapesDifficulty, type ShapesDifficulty } from "../data/datasets/index.js";
import type { SamplerKind } from "../diffusion/config.js";
import type { BackendName } from "../tensor/backends/index.js";

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
