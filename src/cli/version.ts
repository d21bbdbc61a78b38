/** The package version, read once from package.json (two levels above src/cli and dist/cli). */
import { readFileSync } from "node:fs";

let cached: string | null = null;

/** Returns the version field of the package's package.json. */
export function version(): string {
  cached ??= JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"))
    .version as string;
  return cached;
}
