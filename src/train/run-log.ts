/**
 * The files a run keeps beside its checkpoint: metrics.jsonl (one JSON line per step), the
 * loss curves, and the cleanup of temporary files an interrupted write left behind. Every
 * write either completes or leaves the previous file, and fails with an error naming the file:
 * a full disk must not cost a run its log or end it with a bare stack trace.
 */
import {
  closeSync,
  existsSync,
  fstatSync,
  ftruncateSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { writePng } from "../data/image.js";
import { checkpointTempDir } from "../io/checkpoint.js";
import { tempFileOwner, writeFileAtomic } from "../tensor/atomic-write.js";
import { chartSvg, renderChart } from "./plot.js";
import type { StepMetrics } from "./trainer.js";

/**
 * Returns the per-step metrics logged in a run's metrics.jsonl, up to step `upTo`. A last line
 * that does not parse is a write torn by a crash or a full disk: it is dropped and reported
 * through `onWarning`. A bad line anywhere else is damage this cannot repair, and throws
 * naming the file and the line.
 */
export function readHistory(
  path: string,
  upTo = Number.POSITIVE_INFINITY,
  onWarning?: (message: string) => void,
): StepMetrics[] {
  if (!existsSync(path)) return [];
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`${path}: cannot read the metrics log: ${(err as Error).message}`);
  }
  const lines = text.split("\n");
  let last = lines.length - 1;
  while (last >= 0 && lines[last]!.trim() === "") last--;
  const out: StepMetrics[] = [];
  for (let i = 0; i <= last; i++) {
    const line = lines[i]!;
    if (line.trim() === "") continue;
    let m: unknown;
    try {
      m = JSON.parse(line);
    } catch (err) {
      if (i === last) {
        onWarning?.(
          `${path}:${i + 1}: dropped a torn last line (an interrupted write): ${JSON.stringify(line.slice(0, 40))}`,
        );
        break;
      }
      throw new Error(`${path}:${i + 1}: invalid JSON (${(err as Error).message})`);
    }
    const step = (m as { step?: unknown } | null)?.step;
    if (typeof m !== "object" || m === null || typeof step !== "number") {
      throw new Error(`${path}:${i + 1}: expected a metrics object with a numeric "step"`);
    }
    if (step <= upTo) out.push(m as StepMetrics);
  }
  return out;
}

/** Returns nothing; replaces metrics.jsonl atomically with `history`, one line per step. */
export function rewriteHistory(path: string, history: readonly StepMetrics[]): void {
  const text = history.map((m) => `${JSON.stringify(m)}\n`).join("");
  writeFileAtomic(path, [new TextEncoder().encode(text)]);
}

/**
 * Returns nothing; appends one line to the log at `path`. A failed append (a full disk) is
 * cut back to the file's previous length, so the log never keeps half a line, and throws
 * naming the file.
 */
export function appendHistory(path: string, line: string): void {
  let fd: number;
  try {
    fd = openSync(path, "a");
  } catch (err) {
    throw new Error(`${path}: cannot open the metrics log: ${(err as Error).message}`, {
      cause: err,
    });
  }
  let size = -1;
  try {
    size = fstatSync(fd).size;
    const bytes = new TextEncoder().encode(line);
    let done = 0;
    while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
  } catch (err) {
    try {
      if (size >= 0) ftruncateSync(fd, size);
    } catch {
      // the write error below is the one to report; a torn line is dropped on resume anyway
    }
    throw new Error(`${path}: cannot append to the metrics log: ${(err as Error).message}`, {
      cause: err,
    });
  } finally {
    closeSync(fd);
  }
}

/**
 * Returns the loss curve's PNG path after writing `loss.png` and `loss.svg` in `out`, both
 * atomically (errors name the file); null when there is nothing to draw. The image-loss curve
 * is left out of runs that never saw an image.
 */
export async function writeLossCurves(
  out: string,
  history: readonly StepMetrics[],
): Promise<string | null> {
  if (history.length === 0) return null;
  const series = [
    {
      name: "text CE",
      colour: [31, 119, 180] as [number, number, number],
      points: history.map((m) => [m.step, m.lm] as [number, number]),
    },
  ];
  if (history.some((m) => m.images > 0 || m.image > 0)) {
    series.push({
      name: "image MSE",
      colour: [214, 39, 40] as [number, number, number],
      points: history.map((m) => [m.step, m.image] as [number, number]),
    });
  }
  const opts = { title: "training loss (log scale)", xLabel: "step", logY: true };
  const png = join(out, "loss.png");
  await writePng(png, renderChart(series, opts));
  writeFileAtomic(join(out, "loss.svg"), [new TextEncoder().encode(chartSvg(series, opts))]);
  return png;
}

/** The folders of a run that its own writers fill (the run folder itself included). */
const RUN_FOLDERS = [".", "checkpoint", "checkpoint.old", "samples", "vae", "vqvae", "eval"];

/**
 * Returns the paths removed: temporary files an interrupted write left in the run folder `out`
 * and its own subfolders, and its half-written `checkpoint.tmp/`. Only names the project's
 * writers make are touched, only in folders a run writes (never a tree a user pointed --out
 * at), and a file whose writing process is still alive is kept.
 */
export function removeTempLeftovers(out: string, checkpointDir: string): string[] {
  const removed: string[] = [];
  const tmpDir = checkpointTempDir(checkpointDir);
  if (existsSync(tmpDir)) {
    rmSync(tmpDir, { recursive: true, force: true });
    removed.push(tmpDir);
  }
  for (const folder of RUN_FOLDERS) {
    const dir = join(out, folder);
    if (!existsSync(dir)) continue;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const pid = e.isFile() ? tempFileOwner(e.name) : null;
      if (pid === null || processAlive(pid)) continue;
      const path = join(dir, e.name);
      rmSync(path, { force: true });
      removed.push(path);
    }
  }
  return removed;
}

/** Returns true when a process with id `pid` exists (ours included). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
