// Runs a user can trust: resumes that refuse other settings, torn logs, failed writes, foreign
// tokenizers, tampered configs and shapes, temp-file leftovers, text-only data, and the checks
// that fail in seconds instead of after a VAE has been trained.
import assert from "node:assert/strict";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { trainBpe } from "../../src/data/bpe-train.js";
import { TransfusionPipeline } from "../../src/generate/pipeline.js";
import { type RunEvent, runTraining } from "../../src/train/run.js";
import { checkRunOptions } from "../../src/train/run-checks.js";
import { appendHistory, readHistory } from "../../src/train/run-log.js";
import { editSafetensors, shapesDocsFile, tinyRunOptions } from "../helpers.js";

const root = mkdtempSync(join(tmpdir(), "tf-integrity-"));

const LAYOUTS = ["caption-first", "image-first", "two-images"] as const;

/** Returns a JSONL file of shapes documents (caption first, image first, two images). */
const docsFile = (dir: string, n = 12) => shapesDocsFile(dir, n, LAYOUTS);

const options = tinyRunOptions;

let fixture: Promise<{ file: string; run: string }> | null = null;

/** Returns a fresh copy of one 2-step run (trained once per file) and its data file. */
async function trainedRun(name: string): Promise<{ file: string; out: string }> {
  fixture ??= (async () => {
    const file = await docsFile(join(root, "data"));
    const run = join(root, "fixture");
    await runTraining(options(file, run, 2));
    return { file, run };
  })();
  const { file, run } = await fixture;
  const out = join(root, name);
  cpSync(run, out, { recursive: true });
  return { file, out };
}

const stages = (events: RunEvent[]) =>
  events.flatMap((e) => (e.kind === "stage" ? [e.message] : []));

test("a checkpoint saved before mixer.textDocuments existed resumes only as a filler-text run", async () => {
  const { file, out } = await trainedRun("legacy-mixer");
  const cfgPath = join(out, "checkpoint", "config.json");
  const cfg = JSON.parse(readFileSync(cfgPath, "utf8"));
  delete cfg.mixer.textDocuments;
  writeFileSync(cfgPath, JSON.stringify(cfg));
  // The field's absence means the old short documents: asking for whole ones is a conflict.
  await assert.rejects(
    runTraining(options(file, out, 3)),
    /mixer\.textDocuments: saved "filler", requested "whole"/,
  );
  const r = await runTraining({ ...options(file, out, 3), mixer: { textDocuments: "filler" } });
  assert.equal(r.steps, 3);
});

test("a resume asking for another model, data or tokenizer is refused, naming every field", async () => {
  const { file, out } = await trainedRun("conflict");
  const events: RunEvent[] = [];
  const o = options(file, out, 4, events);
  o.model = { ...o.model, dim: 48 };
  o.seqLen = 80;
  o.vocabSize = 320;
  o.mixer = { textRatio: 0.5 };
  o.vae = { ...o.vae, steps: 5 };
  o.train = { ...o.train, maxLr: 0.01 };
  await assert.rejects(runTraining(o), (err: Error) => {
    assert.match(
      err.message,
      /cannot resume: the checkpoint in .*checkpoint was made with other settings/,
    );
    assert.match(err.message, /model\.dim: saved 32, requested 48/);
    assert.match(err.message, /seqLen: saved 64, requested 80/);
    assert.match(err.message, /vocabSize: saved 300, requested 320/);
    assert.match(err.message, /mixer\.textRatio: saved 1, requested 0\.5/);
    assert.match(err.message, /train\.maxLr: saved 0\.001, requested 0\.01/);
    assert.match(
      err.message,
      /vae: saved \{"train":\{"steps":3,.*requested \{"train":\{"steps":5,/,
    );
    assert.match(err.message, /--no-resume \(library: resume: false\).*another --out/);
    return true;
  });
  // Refused before any data was loaded.
  assert.ok(!stages(events).some((m) => m.startsWith("loading data")));

  const other = await docsFile(join(root, "other-data"), 6);
  await assert.rejects(
    runTraining(options(other, out, 4)),
    /\n {2}data: saved ".*docs\.jsonl", requested ".*other-data/,
  );
  const small = { ...options(file, out, 4), preset: "small", model: {} };
  await assert.rejects(runTraining(small), /model\.dim: saved 32, requested 256/);

  // What may change is reported, and the run continues.
  const again: RunEvent[] = [];
  const r = await runTraining({ ...options(file, out, 4, again), sampleEvery: 2 });
  assert.equal(r.steps, 4);
  assert.ok(
    stages(again).includes("resuming with steps 2 → 4, sampleEvery 0 → 2"),
    stages(again).join("\n"),
  );
  // Starting over is the way out.
  const fresh = await runTraining({ ...options(file, out, 1), seqLen: 80, resume: false });
  assert.equal(fresh.steps, 1);
});

test("a torn last metrics line is dropped with a warning; damage elsewhere names the line", async () => {
  const { file, out } = await trainedRun("torn");
  const metrics = join(out, "metrics.jsonl");
  const good = readFileSync(metrics, "utf8");
  writeFileSync(metrics, `${good}{"step":3,"lm":2.`);
  const warnings: string[] = [];
  assert.equal(readHistory(metrics, Infinity, (m) => warnings.push(m)).length, 2);
  assert.match(warnings[0]!, /metrics\.jsonl:3: dropped a torn last line/);
  writeFileSync(metrics, `${good.split("\n")[0]}\n{oops\n${good.split("\n")[1]}\n`);
  assert.throws(() => readHistory(metrics), /metrics\.jsonl:2: invalid JSON/);

  writeFileSync(metrics, `${good}{"step":3,"lm":2.`);
  const events: RunEvent[] = [];
  await runTraining(options(file, out, 3, events));
  assert.ok(stages(events).some((m) => /^warning: .*dropped a torn last line/.test(m)));
  const lines = readFileSync(metrics, "utf8").trim().split("\n");
  assert.deepEqual(
    lines.map((l) => JSON.parse(l).step),
    [1, 2, 3],
  );
});

test("a metrics append on a full disk fails naming the file", () => {
  const dir = mkdtempSync(join(root, "full-"));
  const link = join(dir, "metrics.jsonl");
  symlinkSync("/dev/full", link);
  assert.throws(
    () => appendHistory(link, '{"step":1}\n'),
    /metrics\.jsonl: cannot append to the metrics log: ENOSPC/,
  );
});

test("a loss curve that cannot be written fails the run naming the file, keeping the old one", async () => {
  const { file, out } = await trainedRun("curve");
  const svg = readFileSync(join(out, "loss.svg"), "utf8");
  // A folder in the way makes the final rename fail, as a full disk would fail the write.
  const png = join(out, "loss.png");
  rmSync(png);
  mkdirSync(join(png, "x"), { recursive: true });
  await assert.rejects(runTraining(options(file, out, 4)), /loss\.png: cannot replace the file/);
  assert.equal(readFileSync(join(out, "loss.svg"), "utf8"), svg);
  assert.deepEqual(
    readdirSync(out).filter((n) => n.includes(".tmp")),
    [],
  );
});

test("a tokenizer.json or VAE from another run is refused, naming the file", async () => {
  const { file, out } = await trainedRun("foreign");
  const ckpt = join(out, "checkpoint");
  const tokPath = join(ckpt, "tokenizer.json");
  const own = readFileSync(tokPath, "utf8");
  const size = JSON.parse(readFileSync(join(ckpt, "config.json"), "utf8")).model.vocab;
  const words = Array.from({ length: 400 }, (_, i) => `w${(i * 7919) % 1000}q${i % 37}z`);
  const foreign = trainBpe([words.join(" ").repeat(3)], { vocabSize: size });
  assert.equal(foreign.vocabSize, size);
  foreign.save(tokPath);
  assert.throws(
    () => TransfusionPipeline.load(ckpt),
    /tokenizer\.json: does not belong to this checkpoint/,
  );
  await assert.rejects(
    runTraining(options(file, out, 3)),
    /tokenizer\.json: does not belong to this checkpoint/,
  );
  writeFileSync(tokPath, own);

  editSafetensors(join(ckpt, "vae.safetensors"), (t) => {
    Object.values(t)[0]!.data[0] += 0.5;
  });
  assert.throws(
    () => TransfusionPipeline.load(ckpt),
    /vae\.safetensors: does not belong to this checkpoint/,
  );

  // Checkpoints made before fingerprints load as before.
  const cfgPath = join(ckpt, "config.json");
  const cfg = JSON.parse(readFileSync(cfgPath, "utf8"));
  delete cfg.fingerprints;
  delete cfg.autoencoder;
  cfg.run = { textCorpus: null, shapesDifficulty: null, imageSize: 32 };
  writeFileSync(cfgPath, JSON.stringify(cfg));
  assert.ok(TransfusionPipeline.load(ckpt));
  assert.equal((await runTraining(options(file, out, 3))).steps, 3);
});

test("a checkpoint whose weights hold NaN or Infinity is refused, naming the file and tensor", async () => {
  const { file, out } = await trainedRun("nan");
  const ckpt = join(out, "checkpoint");
  editSafetensors(join(ckpt, "model.safetensors"), (t) => {
    t["norm.weight"]!.data[3] = Number.NaN;
  });
  const nan =
    /model\.safetensors: tensor "norm\.weight" holds NaN at index 3; the weights are corrupt/;
  assert.throws(() => TransfusionPipeline.load(ckpt), nan);
  await assert.rejects(runTraining(options(file, out, 3)), nan);

  const b = await trainedRun("nan-state");
  editSafetensors(join(b.out, "checkpoint", "train_state.safetensors"), (t) => {
    t["adam_v.head.weight"]!.data[0] = Number.POSITIVE_INFINITY;
  });
  await assert.rejects(
    runTraining(options(b.file, b.out, 3)),
    /train_state\.safetensors: tensor "adam_v\.head\.weight" holds Infinity at index 0/,
  );
});

test("a resume validates config.json and every tensor's shape", async () => {
  const { file, out } = await trainedRun("shapes");
  const cfgPath = join(out, "checkpoint", "config.json");
  const cfg = JSON.parse(readFileSync(cfgPath, "utf8"));
  writeFileSync(cfgPath, JSON.stringify({ ...cfg, model: { ...cfg.model, dim: -4 } }));
  await assert.rejects(
    runTraining(options(file, out, 3)),
    /config\.json: model: field "dim" must be an integer ≥ 8, got -4/,
  );
  writeFileSync(cfgPath, JSON.stringify(cfg));

  // Same element count, other shape: only a shape check notices.
  editSafetensors(join(out, "checkpoint", "model.safetensors"), (t) => {
    t["layers.0.mlp.w1.weight"]!.shape.reverse();
  });
  await assert.rejects(
    runTraining(options(file, out, 3)),
    /model\.safetensors: tensor "layers\.0\.mlp\.w1\.weight" has shape \[32,64\], the model expects \[64,32\]/,
  );
});

test("temporary files left by interrupted writes are removed at the start of a run", async () => {
  const { file, out } = await trainedRun("leftovers");
  // 4194999 is above Linux's largest process id, so no live process owns these.
  const stale = [
    join(out, ".loss.png.tmp-4194999.0123456789ab"),
    join(out, "loss.png.tmp-4194999-abcd1234"),
    join(out, "checkpoint", ".model.safetensors.tmp-4194999.0123456789ab"),
    join(out, "samples", ".step-000002.png.tmp-4194999.0123456789ab"),
  ];
  for (const p of stale) writeFileSync(p, "partial");
  mkdirSync(join(out, "checkpoint.tmp"));
  writeFileSync(join(out, "checkpoint.tmp", "model.safetensors"), "partial");
  const mine = join(out, "notes.tmp-1");
  writeFileSync(mine, "not ours");
  const events: RunEvent[] = [];
  await runTraining(options(file, out, 3, events));
  for (const p of stale) assert.equal(existsSync(p), false, p);
  assert.equal(existsSync(join(out, "checkpoint.tmp")), false);
  assert.equal(existsSync(mine), true);
  assert.ok(
    stages(events).some((m) => /removed 5 temporary file/.test(m)),
    stages(events).join("\n"),
  );
});

test("documents with only text train a language model without a VAE", async () => {
  const dir = join(root, "text-only");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, "text.jsonl");
  const lines = Array.from({ length: 10 }, (_, i) =>
    JSON.stringify({ parts: [{ text: `the whale ${i} swims in the sea and the ship follows` }] }),
  );
  writeFileSync(file, `${lines.join("\n")}\n`);
  const out = join(dir, "run");
  const events: RunEvent[] = [];
  const r = await runTraining(options(file, out, 2, events));
  assert.equal(r.steps, 2);
  assert.ok(stages(events).some((m) => /no document has an image/.test(m)));
  assert.ok(!stages(events).some((m) => /training the VAE/.test(m)));
  const ckpt = join(out, "checkpoint");
  assert.equal(existsSync(join(ckpt, "vae.safetensors")), false);
  assert.equal(JSON.parse(readFileSync(join(ckpt, "config.json"), "utf8")).autoencoder, null);
  assert.equal((await runTraining(options(file, out, 3))).steps, 3);

  const p = TransfusionPipeline.load(ckpt);
  assert.equal(p.hasImages, false);
  const parts = await p.generate({ parts: [{ text: "the whale" }] }, { maxNewTokens: 4 });
  assert.ok(parts.every((q) => typeof q.text === "string"));
  await assert.rejects(() => p.textToImage(["a whale"]), /trained on text only/);

  // A mixture of text-only and image documents trains both halves.
  const mixed = join(dir, "mixed.jsonl");
  const images = readFileSync(await docsFile(join(dir, "img"), 6), "utf8")
    .trim()
    .split("\n");
  const rebased = images.map((l) => l.replaceAll('"images/', '"img/images/'));
  writeFileSync(mixed, `${[...lines, ...rebased].join("\n")}\n`);
  await runTraining(options(mixed, join(dir, "mixed"), 2));
  const q = TransfusionPipeline.load(join(dir, "mixed", "checkpoint"));
  assert.equal(q.hasImages, true);
  assert.equal((await q.textToImage(["a red circle"], { steps: 2 })).images.length, 1);
});

test("bad names and documents too long for seqLen fail before data, tokenizer or VAE work", async () => {
  const file = await docsFile(join(root, "fast"), 6);
  const out = join(root, "fast-run");
  const events: RunEvent[] = [];
  const t = Date.now();
  await assert.rejects(
    runTraining({ ...options(file, out, 1, events), preset: "nope" }),
    /unknown preset "nope"; choose one of tiny/,
  );
  await assert.rejects(
    runTraining({ ...options(file, out, 1, events), data: "nope" }),
    /unknown dataset 'nope'/,
  );
  await assert.rejects(
    runTraining({ ...options(file, out, 1, events), textCorpus: "nope" }),
    /unknown text corpus 'nope'/,
  );
  await assert.rejects(
    runTraining({ ...options(file, out, 1, events), model: { dim: -4 } }),
    /model: field "dim" must be an integer ≥ 8, got -4/,
  );
  assert.ok(Date.now() - t < 1000);
  // A preset's own patch size is no error (the placeholder latent must fit it).
  checkRunOptions({ ...options(file, out, 1), preset: "demo", model: {} });
  assert.deepEqual(stages(events), []);

  // Two 6-position images, "two:" and the end of document: at least 14 positions.
  await assert.rejects(
    runTraining({ ...options(file, out, 1, events), seqLen: 12 }),
    /document 3 needs at least 14 positions, more than seqLen 12 .*raise seqLen \(--seq-len\) to 14/,
  );
  // Long enough for one token per caption, too short for the real ones: after the tokenizer.
  await assert.rejects(
    runTraining({ ...options("shapes", out, 1, events), maxImages: 8, seqLen: 8 }),
    /shapes: caption–image pair \d+ needs \d+ positions, more than seqLen 8/,
  );
  assert.ok(!stages(events).some((m) => /training the VAE/.test(m)), stages(events).join("\n"));
});
