// The model shipped with the package: in the package, small, described by its card, loaded by
// one call, used by generate/caption when no --checkpoint is given, and drawing what its card
// says it draws.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { scoreShapeImage } from "../../src/data/datasets/shapes-checker.js";
import { loadPretrained } from "../../src/generate/pipeline.js";
import { readSafetensorsFile } from "../../src/tensor/safetensors.js";
import { cli, packedFiles, ROOT, skip } from "./fixture.js";

const DIR = join(ROOT, "models", "demo");

test("the shipped model is half precision, at most 10 MB, with a card that records how it was made and scored", () => {
  const files = ["config.json", "model.safetensors", "tokenizer.json", "vae.safetensors"];
  const bytes = files.reduce((s, f) => s + statSync(join(DIR, f)).size, 0);
  assert.ok(bytes <= 10e6, `${bytes} bytes`);
  for (const f of ["model.safetensors", "vae.safetensors"]) {
    const st = readSafetensorsFile(join(DIR, f));
    assert.ok(
      Object.values(st.tensors).every((t) => t.dtype === "F16"),
      f,
    );
  }
  const card = JSON.parse(readFileSync(join(DIR, "model-card.json"), "utf8"));
  assert.equal(card.madeBy, "npx transfusion demo");
  assert.equal(card.precision, "float16");
  assert.ok(card.scores.count >= 200);
  assert.ok(card.scores.generationAccuracy >= 0.9 && card.scores.captionAccuracy >= 0.9);
  const md = readFileSync(join(DIR, "MODEL_CARD.md"), "utf8");
  assert.match(md, /## Limitations/);
  assert.match(md, new RegExp(`${(100 * card.scores.generationAccuracy).toFixed(1)}%`));
});

test("loadPretrained() draws what the caption asks and captions it back", async () => {
  const p = loadPretrained();
  const labels = { shapes: 1, colour: "red", kind: "circle", size: "large", position: "left" };
  const { images } = await p.textToImage(["a large red circle on the left"], {
    steps: 50,
    seed: 3,
  });
  const s = scoreShapeImage(images[0]!, labels);
  assert.ok(s.colour && s.kind, JSON.stringify(s));
  assert.match((await p.caption(images))[0]!, /red circle/);
});

test("generate and caption use the shipped model when no --checkpoint is given", { skip }, () => {
  const out = mkdtempSync(join(tmpdir(), "tf-shipped-"));
  const g = cli(["generate", "a small blue square", "--sample-steps", "20", "--out", out]);
  assert.equal(g.status, 0, g.stderr);
  assert.match(g.stderr, /using the shipped model models\/demo/);
  const c = cli(["caption", join(out, "000-s0.png")]);
  assert.equal(c.status, 0, c.stderr);
  assert.match(c.stdout, /blue square/);
});

test("the packed package holds the shipped model", () => {
  const packed = packedFiles();
  for (const f of [
    "model.safetensors",
    "vae.safetensors",
    "tokenizer.json",
    "config.json",
    "MODEL_CARD.md",
  ]) {
    assert.ok(packed.has(`models/demo/${f}`), f);
  }
});
