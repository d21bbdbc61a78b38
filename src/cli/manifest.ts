/**
 * Output folders that hold only the files of the latest call: a command that writes several
 * files (generate, complete) lists them in a JSON manifest beside them, and the next call
 * removes exactly those files before writing its own. Files the user put there are never
 * touched, and an earlier call's images never mix with this call's.
 */
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { basename, join } from "node:path";
import { writeFileAtomic } from "../data/image.js";
import { readJson } from "../io/checkpoint.js";

/** Returns true when `name` is a plain file name (no folder part), safe to join to a folder. */
function isPlainName(name: string): boolean {
  return (
    name !== "" && name !== "." && name !== ".." && basename(name) === name && !name.includes("\\")
  );
}

/**
 * Returns the files (names in `dir`) that the manifest `dir/manifest` lists under "files",
 * or [] when there is no manifest. Throws naming the file and index when the list is malformed.
 */
export function previousFiles(dir: string, manifest: string): string[] {
  const path = join(dir, manifest);
  if (!existsSync(path)) return [];
  const raw = readJson(path) as { files?: unknown };
  if (!Array.isArray(raw?.files))
    throw new Error(
      `${path}: field "files" must be a list of file names; remove the file to go on`,
    );
  return raw.files.map((f, i) => {
    if (typeof f !== "string" || !isPlainName(f)) {
      throw new Error(
        `${path}: files[${i}] must be a file name in ${dir}, got ${JSON.stringify(f)}; remove the file to go on`,
      );
    }
    return f;
  });
}

/**
 * Returns the names of the files removed: those the previous call listed in `dir/manifest`
 * (the manifest itself is rewritten by `writeManifest`). Call it only once the new results
 * exist, so a failed call leaves the previous results whole.
 */
export function removePrevious(dir: string, manifest: string): string[] {
  const files = previousFiles(dir, manifest);
  for (const f of files) rmSync(join(dir, f), { force: true });
  return files;
}

/**
 * Returns the manifest's path once `body` (with "files": the names written, manifest not
 * included) is written to `dir/manifest`, atomically.
 */
export async function writeManifest(
  dir: string,
  manifest: string,
  body: Record<string, unknown> & { files: string[] },
): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, manifest);
  await writeFileAtomic(path, `${JSON.stringify(body, null, 2)}\n`);
  return path;
}
