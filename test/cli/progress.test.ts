// Progress of counted stages: an updating bar on a terminal, one line per stage when piped.
import assert from "node:assert/strict";
import { test } from "node:test";
import { runProgress, stageProgress } from "../../src/cli/progress.js";

/** Returns what `fn` wrote to stderr, with stderr seen as a terminal or not. */
function captured(tty: boolean, fn: () => void): string {
  const write = process.stderr.write;
  const wasTty = process.stderr.isTTY;
  let out = "";
  process.stderr.isTTY = tty;
  process.stderr.write = ((chunk: string) => {
    out += chunk;
    return true;
  }) as typeof process.stderr.write;
  try {
    fn();
  } finally {
    process.stderr.write = write;
    process.stderr.isTTY = wasTty;
  }
  return out;
}

test("a counted stage writes one line when piped, at its end, not one per step", () => {
  const out = captured(false, () => {
    const stage = stageProgress(false);
    for (let i = 1; i <= 100; i++) stage("drawing images", i, 100, undefined, "batch 25");
    stage("captioning", 50, 50);
  });
  assert.deepEqual(out.trim().split("\n"), [
    "drawing images: 100/100  batch 25 in 0s",
    "captioning: 50/50 in 0s",
  ]);
});

test("on a terminal a counted stage redraws one line with a bar and the ETA", () => {
  const out = captured(true, () => {
    const stage = stageProgress(false);
    stage("encoding images", 1, 4, 30);
    stage("encoding images", 4, 4, 0);
  });
  const ERASE = "\r\x1b[2K";
  assert.ok(out.startsWith(`${ERASE}encoding images [`), JSON.stringify(out));
  assert.match(out, /\] 1\/4 ETA 30s/);
  assert.ok(out.endsWith("4/4 ETA 0s\n"));
  assert.equal(
    captured(false, () => stageProgress(true)("x", 1, 1)),
    "",
  );
});

test("a run's tokenizer and encoding progress reach the same display", () => {
  const out = captured(false, () => {
    const show = runProgress(false);
    show({ kind: "progress", stage: "encode", done: 256, total: 512, etaSeconds: 3 });
    show({ kind: "progress", stage: "encode", done: 512, total: 512, etaSeconds: 0 });
  });
  assert.equal(out, "encoding images: 512/512 in 0s\n");
});
