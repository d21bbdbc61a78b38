// `transfusion vqvae`: help, a tiny training run with --json, eval of what it wrote, and bad
// flags ending with a one-line message. Runs the TypeScript CLI through tsx, so it needs no
// build of dist/.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { pathToFileURL } from "node:url";

const MAIN = pathToFileURL(join(import.meta.dirname, "..", "..", "src", "cli", "main.ts")).href;
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Returns the exit status and output of `transfusion ...args`. */
function cli(args: string[]) {
  const script = `const { main } = await import(${JSON.stringify(MAIN)}); process.exitCode = await main(${JSON.stringify(args)});`;
  return spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    encoding: "utf8",
    timeout: 120_000,
  });
}

test("vqvae train and eval have help", () => {
  for (const cmd of ["train", "eval"]) {
    const r = cli(["vqvae", cmd, "--help"]);
    assert.equal(r.status, 0, `vqvae ${cmd} --help: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`Usage: transfusion vqvae ${cmd}`));
    assert.match(r.stdout, cmd === "train" ? /--codebook-size <k>/ : /--count <n>/);
  }
});

test("vqvae train writes a tokenizer that vqvae eval measures", () => {
  const out = join(mkdtempSync(join(tmpdir(), "vqvae-cli-")), "tok");
  dirs.push(out);
  const train = cli([
    "vqvae",
    "train",
    "--data",
    "shapes",
    "--shapes-difficulty",
    "easy",
    "--image-size",
    "16",
    "--levels",
    "2",
    "--codebook-size",
    "16",
    "--steps",
    "3",
    "--batch",
    "2",
    "--out",
    out,
    "--json",
  ]);
  assert.equal(train.status, 0, train.stderr);
  const lines = train.stdout.trim().split("\n");
  const t = JSON.parse(lines[lines.length - 1]!);
  assert.equal(t.steps, 3);
  assert.equal(t.codebookSize, 16);
  for (const k of ["psnr", "usage", "perplexity"]) assert.equal(typeof t[k], "number", k);
  assert.ok(existsSync(join(out, "vqvae.safetensors")) && existsSync(join(out, "recon-final.png")));

  // Dataset, difficulty and size come from vqvae.json.
  const ev = cli(["vqvae", "eval", "--vqvae", out, "--count", "8"]);
  assert.equal(ev.status, 0, ev.stderr);
  assert.match(ev.stdout, /held-out PSNR\s+[\d.]+ dB/);
  assert.match(ev.stdout, /codebook usage\s+[\d.]+% \(\d+ of 16 codes\)/);
  assert.match(ev.stdout, /code perplexity\s+[\d.]+/);
  assert.match(ev.stdout, /8 shapes test images/);
  const json = cli(["vqvae", "eval", "--vqvae", out, "--data", "shapes", "--count", "4", "--json"]);
  assert.equal(json.status, 0, json.stderr);
  const e = JSON.parse(json.stdout.trim().split("\n").at(-1)!);
  assert.equal(e.images, 4);
  assert.equal(e.codebookSize, 16);
});

test("bad flags end with a one-line message and a non-zero exit", () => {
  const badSize = cli([
    "vqvae",
    "train",
    "--data",
    "shapes",
    "--out",
    "/tmp/x",
    "--codebook-size",
    "0",
  ]);
  assert.notEqual(badSize.status, 0);
  assert.match(badSize.stderr, /--codebook-size must be an integer ≥ 1, got "0"/);
  const badData = cli(["vqvae", "train", "--data", "nope", "--out", "/tmp/x"]);
  assert.notEqual(badData.status, 0);
  assert.match(badData.stderr, /--data must be one of shapes, mnist/);
  const badLevel = cli([
    "vqvae",
    "train",
    "--data",
    "mnist",
    "--out",
    "/tmp/x",
    "--shapes-difficulty",
    "easy",
  ]);
  assert.equal(badLevel.status, 1);
  assert.match(badLevel.stderr, /^transfusion: --shapes-difficulty applies only to --data shapes/m);
  const missing = cli(["vqvae", "eval", "--vqvae", "/nonexistent/tok", "--data", "shapes"]);
  assert.equal(missing.status, 1);
  assert.match(
    missing.stderr,
    /^transfusion: \/nonexistent\/tok\/vqvae\.safetensors: cannot read/m,
  );
});
