// The command line as a user meets it: help for every command, clear errors with a non-zero
// exit, and Ctrl-C during training that checkpoints and exits cleanly.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { trainTinyRun } from "./fixture.js";

const BIN = join(import.meta.dirname, "..", "..", "bin", "transfusion.js");
const built = existsSync(join(import.meta.dirname, "..", "..", "dist", "cli", "main.js"));
const skip = built ? false : "dist/ not built (npm run build)";

function run(args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", timeout: 60_000 });
}

test("every command has help", { skip }, () => {
  for (const cmd of [
    [],
    ["demo"],
    ["train"],
    ["generate"],
    ["complete"],
    ["caption"],
    ["vae", "train"],
    ["vae", "eval"],
    ["bench", "core"],
    ["bench", "train"],
    ["bench", "sample"],
    ["eval"],
    ["experiment"],
    ["classifier", "train"],
    ["classifier", "eval"],
  ]) {
    const r = run([...cmd, "--help"]);
    assert.equal(r.status, 0, `${cmd.join(" ")} --help exited ${r.status}`);
    assert.match(r.stdout, /Usage: transfusion/);
  }
});

test("bad input ends with a one-line message and a non-zero exit", { skip }, () => {
  const missing = run(["generate", "--checkpoint", "/nonexistent/ckpt", "a red circle"]);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /^transfusion: \/nonexistent\/ckpt: no checkpoint here/m);
  const badFlag = run(["train", "--steps", "zero"]);
  assert.notEqual(badFlag.status, 0);
  assert.match(badFlag.stderr, /--steps must be an integer ≥ 1, got "zero"/);
  const badData = run(["train", "--data", "nope", "--out", join(tmpdir(), "tf-nope")]);
  assert.equal(badData.status, 1);
  assert.match(
    badData.stderr,
    /--data must be one of shapes, mnist, fashion-mnist, emoji or a \.jsonl document file, got "nope"/,
  );
  const badEval = run(["eval", "--checkpoint", "/nonexistent/ckpt"]);
  assert.equal(badEval.status, 1);
  assert.match(badEval.stderr, /^transfusion: \/nonexistent\/ckpt: no checkpoint here/m);
  const badExperiment = run(["experiment", "nope"]);
  assert.equal(badExperiment.status, 1);
  assert.match(badExperiment.stderr, /unknown experiment 'nope'/);
  const badLevel = run([
    "classifier",
    "train",
    "--data",
    "shapes",
    "--shapes-difficulty",
    "extreme",
  ]);
  assert.notEqual(badLevel.status, 0);
  assert.match(
    badLevel.stderr,
    /--shapes-difficulty must be one of easy, medium, hard, got "extreme"/,
  );
  const badSeeds = run(["experiment", "attention", "--seeds", "0,0"]);
  assert.notEqual(badSeeds.status, 0);
  assert.match(badSeeds.stderr, /--seeds lists a value twice/);
});

test("experiment list names every comparison", { skip }, () => {
  const r = run(["experiment", "list"]);
  assert.equal(r.status, 0, r.stderr);
  for (const name of ["attention", "noise-cap", "encoder", "lambda", "guidance"]) {
    assert.match(r.stdout, new RegExp(`^${name} `, "m"));
  }
});

test("eval --json ends with one object holding every metric and its settings", {
  skip,
  timeout: 300_000,
}, () => {
  const dir = mkdtempSync(join(tmpdir(), "tf-eval-"));
  const long = (args: string[]) =>
    spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", timeout: 240_000 });
  trainTinyRun(join(dir, "run"));
  const clf = long([
    "classifier",
    "train",
    "--data",
    "shapes",
    "--steps",
    "5",
    "--out",
    join(dir, "clf"),
    "--json",
  ]);
  assert.equal(clf.status, 0, clf.stderr);
  const r = long([
    "eval",
    "--checkpoint",
    join(dir, "run"),
    "--classifier",
    join(dir, "clf"),
    "--count",
    "4",
    "--sampler",
    "ddim",
    "--sample-steps",
    "2",
    "--text-bytes",
    "500",
    "--json",
  ]);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  const out = JSON.parse(lines[lines.length - 1]!);
  for (const k of ["bitsPerByte", "generationAccuracy", "fid", "fidRealFloor", "captionAccuracy"]) {
    assert.equal(typeof out[k], "number", `${k}: ${out[k]}`);
  }
  assert.equal(out.settings.count, 4);
  assert.equal(out.settings.image.sampler, "ddim");
  assert.equal(out.settings.textCorpus, "moby-dick");
  assert.ok(existsSync(out.files.generated) && existsSync(out.files.summary));
});

test("Ctrl-C during training saves a checkpoint and exits cleanly", {
  skip,
  timeout: 120_000,
}, async () => {
  const out = join(mkdtempSync(join(tmpdir(), "tf-sigint-")), "run");
  const args = [
    "train",
    "--preset",
    "tiny",
    "--out",
    out,
    "--steps",
    "100000",
    "--vae-steps",
    "5",
    "--max-images",
    "200",
    "--sample-every",
    "0",
  ];
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => {
    stdout += d;
  });
  const code = await new Promise<number | null>((resolve) => {
    child.stderr.on("data", (d) => {
      stderr += d;
      if (/train \[/.test(stderr) && !child.killed) child.kill("SIGINT");
    });
    child.on("exit", (c) => resolve(c));
  });
  assert.equal(code, 0, stderr);
  assert.match(stdout, /interrupted at step \d+; run the same command to resume/);
  assert.ok(existsSync(join(out, "checkpoint", "model.safetensors")));
  assert.ok(existsSync(join(out, "checkpoint", "train_state.safetensors")));
});
