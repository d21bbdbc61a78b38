/** Progress display for long runs: a bar with ETA on a terminal, plain lines otherwise. */
import type { RunEvent } from "../train/run.js";

/** Returns "1h02m", "3m07s" or "12s". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  if (s >= 3600)
    return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${s}s`;
}

/** Returns a text progress bar of `width` cells. */
export function bar(fraction: number, width = 24): string {
  const f = Math.max(0, Math.min(1, fraction));
  const full = Math.floor(f * width);
  return `[${"#".repeat(full)}${full < width ? ">" : ""}${".".repeat(Math.max(0, width - full - 1))}]`;
}

/**
 * Returns a progress reporter for counted stages (encoding images, training a tokenizer or a
 * classifier, drawing images): on a terminal an updating bar with the ETA, and when output is
 * redirected one line per stage, when it completes — not one per step.
 */
export function stageProgress(
  quiet: boolean,
): (label: string, done: number, total: number, etaSeconds?: number, detail?: string) => void {
  if (quiet) return () => {};
  const tty = process.stderr.isTTY === true;
  const started = new Map<string, number>();
  return (label, done, total, etaSeconds, detail) => {
    const more = detail ? `  ${detail}` : "";
    const now = Date.now();
    if (!started.has(label)) started.set(label, now);
    const seconds = (now - started.get(label)!) / 1000;
    if (tty) {
      const eta = etaSeconds ?? (done > 0 ? (seconds / done) * (total - done) : Number.NaN);
      process.stderr.write(
        `\r\x1b[2K${label} ${bar(total > 0 ? done / total : 1)} ${done}/${total}${more} ETA ${formatDuration(eta)}`,
      );
      if (done >= total) process.stderr.write("\n");
    } else if (done >= total) {
      process.stderr.write(`${label}: ${total}/${total}${more} in ${formatDuration(seconds)}\n`);
    }
    if (done >= total) started.delete(label);
  };
}

/** How the evaluation's stages are named in progress lines. */
export const EVAL_LABELS = {
  images: "drawing images",
  captions: "captioning",
  text: "scoring held-out text",
} as const;

const PROGRESS_LABELS = {
  tokenizer: "tokenizer merges",
  encode: "encoding images",
  pack: "packing batches",
} as const;

/**
 * Returns an event handler that draws run progress on stderr: an updating line on a terminal,
 * and one line every `plainEvery` steps (plus stage messages) when output is redirected.
 */
export function runProgress(quiet: boolean, plainEvery = 50): (e: RunEvent) => void {
  if (quiet) return () => {};
  const tty = process.stderr.isTTY === true;
  let open = false;
  const line = (s: string) => {
    if (tty) {
      process.stderr.write(`\r\x1b[2K${s}`);
      open = true;
    } else process.stderr.write(`${s}\n`);
  };
  const close = () => {
    if (open) process.stderr.write("\n");
    open = false;
  };
  const stage = stageProgress(false);
  return (e) => {
    switch (e.kind) {
      case "progress":
        close();
        stage(PROGRESS_LABELS[e.stage], e.done, e.total, e.etaSeconds);
        return;
      case "stage":
        close();
        process.stderr.write(`» ${e.message}\n`);
        return;
      case "vae":
        if (tty || e.step % plainEvery === 0 || e.step === e.steps) {
          line(
            `VAE   ${bar(e.step / e.steps)} ${e.step}/${e.steps} loss ${e.loss.toFixed(4)} ETA ${formatDuration(e.etaSeconds)}`,
          );
        }
        if (e.step === e.steps) close();
        return;
      case "step": {
        const m = e.metrics;
        if (tty || m.step % plainEvery === 0 || m.step === e.steps) {
          line(
            `train ${bar(m.step / e.steps)} ${m.step}/${e.steps} text ${m.lm.toFixed(3)} image ${m.image.toFixed(4)} ` +
              `lr ${m.lr.toExponential(1)} ${Math.round(m.tokensPerSecond)} tok/s ETA ${formatDuration(e.etaSeconds)}` +
              (m.skipped ? " (skipped: non-finite)" : ""),
          );
        }
        if (m.step === e.steps) close();
        return;
      }
      case "file":
        close();
        process.stderr.write(`  wrote ${e.what}: ${e.path}\n`);
        return;
    }
  };
}
