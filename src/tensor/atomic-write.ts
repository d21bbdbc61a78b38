/**
 * Crash-safe file replacement: write a temporary file next to the target, fsync it, then
 * rename it over the target. A reader (or a process that dies half-way) sees either the
 * old file or the complete new one, never a partial file under the target name.
 */
import { randomBytes } from "node:crypto";
import {
  closeSync,
  fsyncSync,
  openSync,
  readdirSync,
  renameSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";

/**
 * Returns nothing; writes the concatenation of `chunks` to `path` atomically.
 *
 * `chunks` is consumed lazily, so a generator may produce data while the file is written;
 * if it throws, the temporary file is removed and any existing file at `path` is untouched.
 * Errors name the target path and keep the original error as `cause`.
 */
export function writeFileAtomic(path: string, chunks: Iterable<Uint8Array>): void {
  const dir = dirname(path);
  // Same folder as the target, so the final rename never crosses file systems.
  const tmp = join(dir, `${tempPrefix(path)}${process.pid}.${randomBytes(6).toString("hex")}`);
  let fd: number;
  try {
    fd = openSync(tmp, "wx");
  } catch (err) {
    throw wrap(path, "cannot create a temporary file", err);
  }
  try {
    for (const chunk of chunks) writeAll(fd, chunk);
    fsyncSync(fd);
  } catch (err) {
    closeQuietly(fd);
    unlinkQuietly(tmp);
    throw wrap(path, "write failed", err);
  }
  closeSync(fd);
  try {
    renameSync(tmp, path);
  } catch (err) {
    unlinkQuietly(tmp);
    throw wrap(path, "cannot replace the file", err);
  }
  syncDirectory(dir);
}

/** Returns the names of leftover temporary files for `path` (used by tests and cleanup). */
export function listTempFiles(path: string): string[] {
  const prefix = tempPrefix(path);
  return readdirSync(dirname(path)).filter((name) => name.startsWith(prefix));
}

function tempPrefix(path: string): string {
  return `.${basename(path)}.tmp-`;
}

/**
 * Returns the id of the process that made the temporary file named `name` when the name is one
 * this project's atomic writers make (`.NAME.tmp-PID.HEX12`, or `NAME.tmp-PID-HEX8` from the
 * asynchronous writer of earlier versions), else null. A process that dies mid-write leaves
 * such a file behind; its owner tells whether the write may still be in progress.
 */
export function tempFileOwner(name: string): number | null {
  const m =
    /^\..+\.tmp-(\d+)\.[0-9a-f]{12}$/.exec(name) ?? /^.+\.tmp-(\d+)-[0-9a-f]{8}$/.exec(name);
  return m ? Number(m[1]) : null;
}

function writeAll(fd: number, chunk: Uint8Array): void {
  // writeSync may write fewer bytes than asked (e.g. on pipes or near quota limits).
  let done = 0;
  while (done < chunk.byteLength) {
    done += writeSync(fd, chunk, done, chunk.byteLength - done);
  }
}

function syncDirectory(dir: string): void {
  // Makes the rename itself durable. Some platforms cannot open or fsync a directory;
  // the data is already safe on disk there, so failure is not an error.
  try {
    const dfd = openSync(dir, "r");
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    // best effort
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already failing; the original error is the useful one
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already failing; the original error is the useful one
  }
}

function wrap(path: string, what: string, err: unknown): Error {
  const reason = err instanceof Error ? err.message : String(err);
  return new Error(`${path}: ${what}: ${reason}`, { cause: err });
}
