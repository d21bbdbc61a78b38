/**
 * The model shipped with the package: `models/demo`, made by `transfusion demo` and `transfusion
 * release` (its MODEL_CARD.md says how, and how well it does). Commands that draw, caption or
 * serve use it when no --checkpoint is given; the library loads it with `loadPretrained()`.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { MODEL_FILE } from "./checkpoint.js";

/** The shipped model's folder, relative to the package root. */
export const SHIPPED_MODEL = "models/demo";

/** Returns the shipped model's folder, or null when the package holds none. */
export function shippedModelDir(): string | null {
  // This file is src/io/shipped.ts or dist/io/shipped.js: the package root is two levels up.
  const dir = join(fileURLToPath(new URL("../..", import.meta.url)), SHIPPED_MODEL);
  return existsSync(join(dir, MODEL_FILE)) ? dir : null;
}
