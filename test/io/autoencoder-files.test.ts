// VAE and VQ tokenizer files: weights holding NaN or Infinity are refused when loaded and never
// written, so a diverged autoencoder cannot reach a checkpoint and decode noise.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { loadVae, saveVae } from "../../src/io/vae-files.js";
import { loadVqVae, saveVqVae } from "../../src/io/vqvae-files.js";
import { Vae } from "../../src/model/vae.js";
import { VqVae } from "../../src/model/vqvae.js";
import { Rng } from "../../src/tensor/rng.js";
import { editSafetensors } from "../helpers.js";

const small = { baseChannels: 8, groups: 4, levels: 2 };

test("a VAE or VQ file holding NaN or Infinity is refused on load, naming file and tensor", () => {
  const dir = mkdtempSync(join(tmpdir(), "tf-ae-nan-"));
  saveVae(new Vae(small, new Rng(1)), join(dir, "vae"));
  let poisoned = "";
  editSafetensors(join(dir, "vae", "vae.safetensors"), (t) => {
    poisoned = Object.keys(t).at(-1)!;
    t[poisoned]!.data[2] = Number.NEGATIVE_INFINITY;
  });
  assert.throws(
    () => loadVae(join(dir, "vae")),
    new RegExp(`vae\\.safetensors: tensor "${poisoned}" holds -Infinity at index 2`),
  );

  saveVqVae(new VqVae({ ...small, codeDim: 3, codebookSize: 8 }, new Rng(1)), join(dir, "vq"));
  editSafetensors(join(dir, "vq", "vqvae.safetensors"), (t) => {
    poisoned = Object.keys(t)[0]!;
    t[poisoned]!.data[0] = Number.NaN;
  });
  assert.throws(
    () => loadVqVae(join(dir, "vq")),
    new RegExp(`vqvae\\.safetensors: tensor "${poisoned}" holds NaN at index 0`),
  );
});

test("the VAE and VQ savers refuse non-finite weights and keep the previous file", () => {
  const dir = mkdtempSync(join(tmpdir(), "tf-ae-save-"));
  const vae = new Vae(small, new Rng(1));
  saveVae(vae, dir);
  const before = readFileSync(join(dir, "vae.safetensors"));
  const [name, p] = vae.namedParameters()[0]!;
  p.f32[0] = Number.NaN;
  assert.throws(
    () => saveVae(vae, dir),
    new RegExp(`refusing to save .*vae\\.safetensors: tensor "${name}" holds NaN at index 0`),
  );
  assert.deepEqual(readFileSync(join(dir, "vae.safetensors")), before);
  p.f32[0] = 0;
  vae.scalingFactor = Number.NaN;
  assert.throws(() => saveVae(vae, dir), /scaling factor NaN is not a finite positive number/);

  const vq = new VqVae({ ...small, codeDim: 3, codebookSize: 8 }, new Rng(1));
  const [qName, q] = vq.namedParameters().at(-1)!;
  q.f32[1] = Number.POSITIVE_INFINITY;
  assert.throws(
    () => saveVqVae(vq, dir),
    new RegExp(
      `refusing to save .*vqvae\\.safetensors: tensor "${qName}" holds Infinity at index 1`,
    ),
  );
});
