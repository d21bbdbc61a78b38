// `generate`, `complete` and `caption` as a user meets them: several captions in one call,
// files named by prompt and seed with their settings inside, no stale files from an earlier
// call, interleaved text and images, images of the other channel count converted, and
// --checkpoint taking a run folder or its checkpoint folder.
import assert from "node:assert/strict";
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import sharp from "sharp";
import { readPngText } from "../../src/data/png-text.js";
import { readSafetensorsFile, writeSafetensorsFile } from "../../src/tensor/safetensors.js";
import { cli, lastJson, skip, trainTinyRun } from "./fixture.js";

const tmp = mkdtempSync(join(tmpdir(), "tf-generate-"));
let run = "";

after(() => rmSync(tmp, { recursive: true, force: true }));

before(() => {
  if (!skip) run = trainTinyRun(join(tmp, "run"));
});

/** Returns the sorted file names in a folder. */
const list = (dir: string) => readdirSync(dir).sort();

test("generate draws several captions, names files by prompt and seed, records settings", {
  skip,
}, async () => {
  const out = join(tmp, "gen");
  const prompts = join(tmp, "prompts.txt");
  writeFileSync(prompts, "a red circle\n\na blue square\n");
  const r = cli([
    "generate",
    "--checkpoint",
    run,
    "a green triangle",
    "--prompts",
    prompts,
    "--count",
    "2",
    "--seed",
    "3",
    "--sample-steps",
    "2",
    "--out",
    out,
    "--json",
  ]);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(list(out), [
    "000-s3.png",
    "000-s4.png",
    "001-s3.png",
    "001-s4.png",
    "002-s3.png",
    "002-s4.png",
    "generate.json",
    "grid.png",
  ]);
  const manifest = JSON.parse(readFileSync(join(out, "generate.json"), "utf8"));
  assert.equal(manifest.checkpoint, join(run, "checkpoint"));
  assert.deepEqual(
    {
      sampler: manifest.sampler,
      steps: manifest.sampleSteps,
      guidance: manifest.guidance,
      clip: manifest.x0Clip,
    },
    { sampler: "ddpm", steps: 2, guidance: 5, clip: 3 },
  );
  assert.deepEqual(manifest.images[3], {
    file: "001-s4.png",
    prompt: "a red circle",
    promptIndex: 1,
    seed: 4,
  });
  assert.equal(lastJson(r.stdout).manifest, join(out, "generate.json"));

  const png = readFileSync(join(out, "002-s3.png"));
  const text = readPngText(png);
  assert.deepEqual(
    [
      text.prompt,
      text.seed,
      text.sampler,
      text["sample-steps"],
      text.guidance,
      text["x0-clip"],
      text.checkpoint,
    ],
    ["a blue square", "3", "ddpm", "2", "5", "3", join(run, "checkpoint")],
  );
  // An independent reader (libvips) sees the same chunks, and the file still decodes.
  const meta = await sharp(png).metadata();
  assert.ok(meta.comments?.some((c) => c.keyword === "prompt" && c.text === "a blue square"));
  assert.equal(meta.width, 32);

  // Each file is what a call for that caption and seed alone draws.
  const alone = join(tmp, "alone");
  const one = cli([
    "generate",
    "--checkpoint",
    run,
    "a red circle",
    "--seed",
    "4",
    "--sample-steps",
    "2",
    "--out",
    alone,
  ]);
  assert.equal(one.status, 0, one.stderr);
  assert.deepEqual(readFileSync(join(alone, "000-s4.png")), readFileSync(join(out, "001-s4.png")));
});

test("generate replaces the files of its previous call and leaves other files alone", {
  skip,
}, () => {
  const out = join(tmp, "again");
  const first = cli([
    "generate",
    "--checkpoint",
    run,
    "a",
    "b",
    "--sample-steps",
    "1",
    "--out",
    out,
  ]);
  assert.equal(first.status, 0, first.stderr);
  writeFileSync(join(out, "notes.txt"), "mine");
  // The checkpoint folder itself, the older --steps spelling, and 0 = off for both settings.
  const second = cli([
    "generate",
    "--checkpoint",
    join(run, "checkpoint"),
    "unicode — ✓",
    "--seed",
    "9",
    "--steps",
    "1",
    "--guidance",
    "0",
    "--x0-clip",
    "0",
    "--out",
    out,
  ]);
  assert.equal(second.status, 0, second.stderr);
  assert.deepEqual(list(out), ["000-s9.png", "generate.json", "notes.txt"]);
  const text = readPngText(readFileSync(join(out, "000-s9.png")));
  assert.equal(text.prompt, "unicode — ✓");
  assert.equal(text.guidance, "0");
  assert.equal(text["x0-clip"], "0");
  const none = cli(["generate", "--checkpoint", run, "--out", out]);
  assert.equal(none.status, 1);
  assert.match(none.stderr, /give a caption .* or --prompts FILE/);
});

test("--checkpoint without a checkpoint names the flag and the path", { skip }, () => {
  const empty = mkdtempSync(join(tmp, "empty-"));
  for (const args of [["generate", "x"], ["caption", "x.png"], ["complete", "x"], ["eval"]]) {
    const r = cli([...args, "--checkpoint", empty]);
    assert.equal(r.status, 1, args[0]);
    assert.match(
      r.stderr,
      new RegExp(
        `^transfusion: ${empty}: no checkpoint here \\(--checkpoint takes a run folder`,
        "m",
      ),
    );
  }
});

test("complete writes the text to stdout and lists its parts in complete.json", { skip }, () => {
  const out = join(tmp, "complete");
  const r = cli([
    "complete",
    "--checkpoint",
    join(run, "checkpoint"),
    "first a red square:",
    "--max-tokens",
    "6",
    "--sample-steps",
    "1",
    "--temperature",
    "1",
    "--top-k",
    "50",
    "--top-p",
    "0.9",
    "--seed",
    "2",
    "--out",
    out,
  ]);
  assert.equal(r.status, 0, r.stderr);
  const manifest = JSON.parse(readFileSync(join(out, "complete.json"), "utf8"));
  assert.equal(manifest.prompt, "first a red square:");
  assert.deepEqual(
    [manifest.temperature, manifest.topK, manifest.topP, manifest.seed],
    [1, 50, 0.9, 2],
  );
  const text = manifest.parts.map((p: { text?: string }) => p.text ?? "").join("");
  assert.equal(r.stdout, `${text}\n`);
});

test("complete draws images in order when the model starts one", { skip }, () => {
  // A model that always starts an image: every layer's output projections are zero, so the
  // last hidden state is the (all-ones) token embedding, and only BOI's head row is non-zero.
  const forced = join(tmp, "forced");
  cpSync(join(run, "checkpoint"), join(forced, "checkpoint"), { recursive: true });
  const file = join(forced, "checkpoint", "model.safetensors");
  const st = readSafetensorsFile(file);
  const tokenizer = JSON.parse(readFileSync(join(forced, "checkpoint", "tokenizer.json"), "utf8"));
  const boi = tokenizer.added_tokens.find((t: { content: string }) => t.content === "<|boi|>").id;
  const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [name, e] of Object.entries(st.tensors)) {
    const data = new Float32Array(e.data as Float32Array);
    if (/\.(o_proj|w2)\.weight$/.test(name)) data.fill(0);
    if (name === "embed.weight") data.fill(1);
    if (name === "head.weight") {
      const d = e.shape[1]!;
      data.fill(0);
      data.fill(1, boi * d, (boi + 1) * d);
    }
    tensors[name] = { shape: e.shape, data };
  }
  writeSafetensorsFile(file, tensors, st.metadata);

  const out = join(tmp, "complete-images");
  const args = [
    "complete",
    "--checkpoint",
    forced,
    "a",
    "--temperature",
    "0",
    "--sample-steps",
    "1",
    "--out",
    out,
  ];
  const r = cli([...args, "--max-images", "2", "--max-tokens", "2"]);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(list(out), ["complete.json", "image-000.png", "image-001.png"]);
  const manifest = JSON.parse(readFileSync(join(out, "complete.json"), "utf8"));
  assert.deepEqual(manifest.parts.slice(0, 2), [
    { image: "image-000.png" },
    { image: "image-001.png" },
  ]);
  assert.ok("text" in manifest.parts[2], "text follows the images");
  assert.match(
    r.stdout,
    new RegExp(
      `^\\n\\[image: ${join(out, "image-000.png")}\\]\\n\\n\\[image: ${join(out, "image-001.png")}\\]\\n`,
    ),
  );
  assert.equal(readPngText(readFileSync(join(out, "image-001.png"))).prompt, "a");

  // A text-only call replaces the images of the previous one.
  const again = cli([...args, "--max-images", "0", "--max-tokens", "2", "--json"]);
  assert.equal(again.status, 0, again.stderr);
  assert.deepEqual(list(out), ["complete.json"]);
  assert.ok((lastJson(again.stdout).parts as unknown[]).every((p) => "text" in (p as object)));
});

test("caption converts an image whose channels differ from the model's, with a note", {
  skip,
}, async () => {
  const grey = join(tmp, "grey.png");
  await sharp(Buffer.alloc(32 * 32, 128), { raw: { width: 32, height: 32, channels: 1 } })
    .toColourspace("b-w")
    .png()
    .toFile(grey);
  const rgb = join(tmp, "rgb.png");
  const pixels = Buffer.alloc(28 * 28 * 3);
  for (let i = 0; i < pixels.length; i += 3) pixels[i] = 255; // pure red: not grey
  await sharp(pixels, { raw: { width: 28, height: 28, channels: 3 } })
    .png()
    .toFile(rgb);

  const toColour = cli(["caption", "--checkpoint", run, grey, "--max-tokens", "3", "--json"]);
  assert.equal(toColour.status, 0, toColour.stderr);
  assert.match(
    toColour.stderr,
    /^note: .*grey\.png is greyscale; its grey channel is repeated as RGB/m,
  );
  assert.equal((lastJson(toColour.stdout).captions as unknown[]).length, 1);

  // A greyscale model (MNIST) reads a colour image through its luminance.
  const mnist = join(tmp, "mnist-run");
  const trained = cli(
    [
      "train",
      "--preset",
      "tiny",
      "--data",
      "mnist",
      "--out",
      mnist,
      "--steps",
      "2",
      "--vae-steps",
      "3",
      "--max-images",
      "60",
      "--sample-every",
      "0",
      "--text-corpus",
      "none",
    ],
    {},
    240_000,
  );
  assert.equal(trained.status, 0, trained.stderr);
  const toGrey = cli(["caption", "--checkpoint", mnist, rgb, grey, "--max-tokens", "3"]);
  assert.equal(toGrey.status, 0, toGrey.stderr);
  assert.match(toGrey.stderr, /^note: .*rgb\.png is in colour; converted to grey \(luminance\)/m);
  assert.doesNotMatch(toGrey.stderr, /grey\.png is/, "no note for a grey image");
  assert.equal(toGrey.stdout.trim().split("\n").length, 2);
  assert.ok(existsSync(join(mnist, "checkpoint")));
});
