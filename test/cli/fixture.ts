// Shared by the CLI tests: run the compiled `transfusion` command (bin/ → dist/) and train the
// smallest run the commands can load (tiny preset, a few steps: about ten seconds).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";

export const ROOT = join(import.meta.dirname, "..", "..");
const BIN = join(ROOT, "bin", "transfusion.js");
const built = existsSync(join(ROOT, "dist", "cli", "main.js"));
/** The `skip` option of tests that need dist/ (false when it is built). */
export const skip: string | false = built ? false : "dist/ not built (npm run build)";

/** Returns the exit status and output of `transfusion ...args` (env added to the process's). */
export function cli(args: string[], env: Record<string, string> = {}, timeout = 120_000) {
  return spawnSync(process.execPath, [BIN, ...args], {
    encoding: "utf8",
    timeout,
    env: { ...process.env, ...env },
  });
}

/** Returns the paths `npm pack` would put in the package. */
export function packedFiles(): Set<string> {
  const r = spawnSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  return new Set((JSON.parse(r.stdout)[0].files as Array<{ path: string }>).map((f) => f.path));
}

/** Returns the last line of stdout parsed as JSON (what `--json` prints). */
export function lastJson(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split("\n");
  return JSON.parse(lines[lines.length - 1]!);
}

/** Returns the run folder after training a tiny shapes run into `dir` (about ten seconds). */
export function trainTinyRun(dir: string): string {
  const r = cli(
    [
      "train",
      "--preset",
      "tiny",
      "--out",
      dir,
      "--steps",
      "3",
      "--vae-steps",
      "5",
      "--max-images",
      "100",
      "--sample-every",
      "0",
    ],
    {},
    240_000,
  );
  assert.equal(r.status, 0, r.stderr);
  return dir;
}
