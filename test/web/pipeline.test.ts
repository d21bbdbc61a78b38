// One parsing path for every checkpoint: `fromFiles` on the bytes of a checkpoint folder (what
// a web page holds after fetching it) gives exactly the pipeline `TransfusionPipeline.load`
// reads from disk, `fromUrl` gives it over HTTP, and every integrity check of a load still
// runs on bytes. Also the x̂0 previews shown while an image is denoised, and the prompt helpers.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { DATASET_NAMES } from "../../src/data/datasets/index.js";
import { TransfusionPipeline } from "../../src/generate/pipeline.js";
import {
  LOWERCASE_CAPTION_DATASETS,
  normalisePrompt,
  promptStyle,
  unseenWords,
} from "../../src/generate/prompt.js";
import { setBackend } from "../../src/tensor/backends/index.js";
import { parseSafetensors, serializeSafetensors } from "../../src/tensor/safetensors.js";
import { runTraining } from "../../src/train/run.js";
import { tinyRunOptions } from "../helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "tf-web-pipeline-"));
const ckpt = join(tmp, "run", "checkpoint");
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Every file of the checkpoint folder by name, as bytes (what a page gets from fetch). */
function folderBytes(dir: string): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  for (const name of readdirSync(dir)) out[name] = new Uint8Array(readFileSync(join(dir, name)));
  return out;
}

const SETTINGS = { steps: 6, guidanceScale: 3, seed: 11, sampler: "ddpm" as const };

before(async () => {
  setBackend("js");
  // 64 images: encoding the whole dataset through the VAE would take minutes on js.
  await runTraining({ ...tinyRunOptions("shapes", join(tmp, "run"), 3), maxImages: 64 });
});

test("fromFiles on a checkpoint's bytes draws, captions and continues exactly as load(dir)", async () => {
  const disk = TransfusionPipeline.load(ckpt);
  const bytes = TransfusionPipeline.fromFiles(folderBytes(ckpt), { source: "bytes" });
  assert.equal(bytes.source, "bytes");
  assert.equal(bytes.contextLength, disk.contextLength);
  const a = (await disk.textToImage(["a large red circle"], SETTINGS)).images[0]!;
  const b = (await bytes.textToImage(["a large red circle"], SETTINGS)).images[0]!;
  assert.equal(a.width, 32);
  assert.deepEqual(b, a);
  assert.deepEqual(await bytes.caption([a], 12), await disk.caption([a], 12));
  const doc = { parts: [{ text: "a small" }] };
  const o = { maxNewTokens: 8, steps: 3, seed: 4 };
  assert.deepEqual(await bytes.generate(doc, o), await disk.generate(doc, o));
  // Weights equal tensor for tensor, so every other use agrees too.
  const da = disk.model.namedParameters();
  const db = new Map(bytes.model.namedParameters());
  for (const [name, t] of da) assert.deepEqual(db.get(name)!.f32, t.f32, name);
});

test("previews show x̂0 at every k-th step and the last, and never change the image", async () => {
  const p = TransfusionPipeline.load(ckpt);
  const plain = (await p.textToImage(["a small blue square"], SETTINGS)).images[0]!;
  const seen: number[] = [];
  let last = null as null | typeof plain;
  const watched = (
    await p.textToImage(["a small blue square"], {
      ...SETTINGS,
      previewEvery: 4,
      onPreview: (row, step, steps, image) => {
        assert.equal(row, 0);
        assert.equal(steps, SETTINGS.steps);
        assert.equal(image.width, 32);
        seen.push(step);
        last = image;
      },
    })
  ).images[0]!;
  assert.deepEqual(seen, [4, 6]);
  assert.deepEqual(watched, plain);
  // At the last step ᾱ_prev = 1, so the sample is x̂0 itself.
  assert.deepEqual(last, plain);
  const ddim = await p.textToImage(["a small blue square"], { ...SETTINGS, sampler: "ddim" });
  let ddimLast = null as null | typeof plain;
  await p.textToImage(["a small blue square"], {
    ...SETTINGS,
    sampler: "ddim",
    onPreview: (_r, _s, _n, image) => {
      ddimLast = image;
    },
  });
  assert.deepEqual(ddimLast, ddim.images[0]);
});

test("fromUrl fetches the files config.json names and gives the same pipeline", async () => {
  const requested: string[] = [];
  const server = createServer((req, res) => {
    const name = decodeURIComponent(new URL(req.url!, "http://x").pathname.replace("/ckpt/", ""));
    requested.push(name);
    try {
      const body = readFileSync(join(ckpt, name));
      res.writeHead(200, { "Content-Length": body.length }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  try {
    const port = (server.address() as { port: number }).port;
    const progress: Array<{ loaded: number; total: number | null }> = [];
    const p = await TransfusionPipeline.fromUrl(`http://127.0.0.1:${port}/ckpt`, {
      onProgress: (e) => progress.push({ loaded: e.loaded, total: e.total }),
    });
    assert.deepEqual(requested.sort(), [
      "config.json",
      "model.safetensors",
      "tokenizer.json",
      "vae.safetensors",
    ]);
    assert.equal(p.source, `http://127.0.0.1:${port}/ckpt/`);
    const want = ["tokenizer.json", "vae.safetensors", "model.safetensors"]
      .map((f) => statSync(join(ckpt, f)).size)
      .reduce((x, y) => x + y);
    assert.deepEqual(progress.at(-1), { loaded: want, total: want });
    const disk = TransfusionPipeline.load(ckpt);
    assert.deepEqual(
      (await p.textToImage(["a large red circle"], SETTINGS)).images,
      (await disk.textToImage(["a large red circle"], SETTINGS)).images,
    );
    await assert.rejects(
      TransfusionPipeline.fromUrl(`http://127.0.0.1:${port}/nothing/`),
      /nothing\/config\.json: HTTP 404/,
    );
  } finally {
    server.close();
  }
});

test("fromFiles keeps every check of a load: files, version, fingerprints, finite weights", () => {
  const files = folderBytes(ckpt);
  const load = (f: Record<string, Uint8Array | string>) =>
    TransfusionPipeline.fromFiles(f, { source: "https://host/m" });
  const { "vae.safetensors": _vae, ...noVae } = files;
  assert.throws(() => load(noVae), /^Error: https:\/\/host\/m\/vae\.safetensors: missing/);
  const cfg = JSON.parse(new TextDecoder().decode(files["config.json"]));
  assert.throws(
    () => load({ ...files, "config.json": JSON.stringify({ ...cfg, version: 99 }) }),
    /config\.json: checkpoint version 99 is not supported/,
  );
  // A tokenizer with one merge fewer: same format, another run's file.
  const tok = JSON.parse(new TextDecoder().decode(files["tokenizer.json"]));
  tok.model.merges = tok.model.merges.slice(0, -1);
  assert.throws(
    () => load({ ...files, "tokenizer.json": JSON.stringify(tok) }),
    /tokenizer\.json: does not belong to this checkpoint/,
  );
  const st = parseSafetensors(files["model.safetensors"]!);
  const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [k, v] of Object.entries(st.tensors)) {
    tensors[k] = { shape: v.shape, data: Float32Array.from(v.data) };
  }
  tensors["norm.weight"]!.data[0] = Number.NaN;
  assert.throws(
    () => load({ ...files, "model.safetensors": serializeSafetensors(tensors, st.metadata) }),
    /model\.safetensors: tensor "norm\.weight" holds NaN at index 0/,
  );
  assert.throws(
    () => load({ ...files, "model.safetensors": files["model.safetensors"]!.subarray(0, 100) }),
    /https:\/\/host\/m\/model\.safetensors: /,
  );
});

test("prompts are normalised as the training text was, and unseen words are found", () => {
  assert.deepEqual([...LOWERCASE_CAPTION_DATASETS].sort(), [...DATASET_NAMES].sort());
  const cfg = JSON.parse(readFileSync(join(ckpt, "config.json"), "utf8"));
  const caption = promptStyle(cfg, "caption");
  assert.deepEqual(caption, { lowercase: true });
  assert.equal(normalisePrompt("  A  Large\tRED\ncircle ", caption), "a large red circle");
  assert.equal(normalisePrompt("Cafe\u0301", { lowercase: false }), "Café");
  assert.deepEqual(promptStyle({ data: "docs.jsonl" }, "caption"), { lowercase: false });
  assert.deepEqual(promptStyle({ data: "shapes", run: { textCorpus: "moby-dick" } }, "document"), {
    lowercase: false,
  });
  const p = TransfusionPipeline.load(ckpt);
  // A 300-token vocabulary is bytes, specials and a few dozen merges: long words are spelled out.
  const unseen = unseenWords(p.tokenizer, "a large zebra, a large zebra!");
  assert.ok(unseen.includes("zebra"));
  assert.equal(new Set(unseen).size, unseen.length);
  assert.ok(!unseen.includes(","));
  for (const w of unseen) assert.ok(p.tokenizer.encode(` ${w}`).length > 1, w);
  // " a" starts most captions: surely one token.
  assert.deepEqual(unseenWords(p.tokenizer, "a"), []);
});
