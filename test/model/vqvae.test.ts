// The VQ tokenizer: config errors, nearest-code search, the straight-through estimator and
// both VQ losses against finite differences, code round trips, and its files.
// Tiny configs (16×16 images, width 8) so everything runs in a few seconds on the js backend.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { loadVqVae, saveVqVae } from "../../src/io/vqvae-files.js";
import { nearestCodes, VqVae, type VqVaeConfig, vqvaeConfig } from "../../src/model/vqvae.js";
import { setBackend } from "../../src/tensor/backends/index.js";
import { Rng } from "../../src/tensor/rng.js";
import { readSafetensorsFile, writeSafetensorsFile } from "../../src/tensor/safetensors.js";
import { randn, Tensor } from "../../src/tensor/tensor.js";
import { gradCheck, hostGrad } from "../helpers.js";

setBackend("js");

const TINY: Partial<VqVaeConfig> = {
  baseChannels: 8,
  groups: 4,
  levels: 2,
  codeDim: 3,
  codebookSize: 8,
};
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("config", () => {
  test("defaults: 512 codes of 16 dims, 3 levels, β = 0.25", () => {
    const c = vqvaeConfig();
    assert.equal(c.codebookSize, 512);
    assert.equal(c.codeDim, 16);
    assert.equal(c.levels, 3);
    assert.equal(c.baseChannels, 32);
    assert.equal(c.commitment, 0.25);
    assert.deepEqual(c.channelMultipliers, [1, 2, 2, 2]);
    assert.deepEqual(new VqVae({ ...TINY, levels: 3 }, new Rng(0)).codeGrid(32, 32), [4, 4]);
  });

  test("validation names the field", () => {
    assert.throws(
      () => vqvaeConfig({ codebookSize: 0 }),
      /field "codebookSize" must be an integer/,
    );
    assert.throws(() => vqvaeConfig({ codeDim: 2.5 }), /field "codeDim" must be an integer/);
    assert.throws(() => vqvaeConfig({ commitment: -1 }), /field "commitment" must be a finite/);
    assert.throws(
      () => vqvaeConfig({ levels: 7 }),
      /field "levels" must be an integer in \[0, 6\]/,
    );
    assert.throws(() => vqvaeConfig({ imageChannels: 2 as 1 }), /"imageChannels" must be 1 or 3/);
    assert.throws(
      () => vqvaeConfig({ baseChannels: 6, groups: 4 }),
      /field "groups" \(4\) must divide every width/,
    );
    assert.throws(
      () => vqvaeConfig({ levels: 1, channelMultipliers: [1, 2, 2] }),
      /"channelMultipliers" must list 2 integers/,
    );
    assert.throws(
      () => vqvaeConfig({ latentChannels: 4 } as Partial<VqVaeConfig>, "here"),
      /^Error: here: unknown field "latentChannels"/,
    );
  });

  test("an image size not divisible by 2^levels is refused", () => {
    const vq = new VqVae(TINY, new Rng(1));
    assert.throws(() => vq.codeGrid(18, 16), /18×16 is not divisible by the downsampling factor 4/);
    assert.throws(() => vq.encodeCodes(randn([1, 3, 12, 10], new Rng(1))), /12×10/);
  });
});

test("nearest codes on a hand-made codebook, ties to the lowest id", () => {
  const codebook = new Float32Array([0, 0, 1, 0, 0, 1, 5, 5]);
  const vectors = new Float32Array([0.1, 0.1, 0.9, 0.2, 0.2, 0.7, 4, 4.5, 0.5, 0, -3, -3, 0, 2]);
  assert.deepEqual([...nearestCodes(vectors, codebook, 2)], [0, 1, 2, 3, 0, 0, 2]);
  assert.throws(() => nearestCodes(new Float32Array(3), codebook, 2), /not rows of 2/);
});

/** Returns a tiny VQ-VAE whose codebook is well separated and z [2, 3, 2, 2] near its codes. */
function separated(seed: number): { vq: VqVae; z: Tensor; expected: number[] } {
  const vq = new VqVae(TINY, new Rng(seed));
  const rng = new Rng(seed + 1);
  // Codes on a grid with spacing 1, inputs within 0.2 of their code: no tie within ±eps.
  vq.codebook.f32.set([0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 1, 1, 1]);
  const expected = Array.from({ length: 8 }, () => rng.int(8));
  const z = new Tensor(new Float32Array(2 * 3 * 2 * 2), [2, 3, 2, 2]);
  expected.forEach((k, m) => {
    const [n, p] = [Math.floor(m / 4), m % 4];
    for (let d = 0; d < 3; d++)
      z.f32[n * 12 + d * 4 + p] = vq.codebook.f32[k * 3 + d]! + 0.2 * (rng.uniform() - 0.5);
  });
  return { vq, z, expected };
}

describe("quantiser", () => {
  test("picks each vector's nearest code, in raster order per image", () => {
    const { vq, z, expected } = separated(1);
    const q = vq.quantize(z);
    assert.deepEqual([...q.codes], expected);
    // The forward value is the codes' vectors (up to one rounding of z + (e − z)).
    expected.forEach((k, m) => {
      const [n, p] = [Math.floor(m / 4), m % 4];
      for (let d = 0; d < 3; d++) {
        const v = q.zq.f32[n * 12 + d * 4 + p]!;
        assert.ok(Math.abs(v - vq.codebook.f32[k * 3 + d]!) < 1e-6);
      }
    });
  });

  test("straight-through: the encoder output gets exactly the decoder input's gradient", () => {
    const { vq, z } = separated(2);
    z.requiresGrad = true;
    const q = vq.quantize(z);
    const seed = new Float32Array(2 * 3 * 8 * 8);
    new Rng(3).fillNormal(seed);
    vq.decoder.forward(q.zq).backward(seed);
    // The decoder on the quantised grid as a leaf: its input gradient, checked numerically.
    const e = new Tensor(q.zq.f32.slice(), q.zq.shape, true);
    vq.decoder.forward(e).backward(seed);
    assert.deepEqual(z.grad, e.grad);
    assert.ok(hostGrad(z)!.some((g) => g !== 0));
    gradCheck(([x]) => vq.decoder.forward(x!), [e], { samples: 12 });
  });

  test("codebook loss moves only the codebook; its gradient matches finite differences", () => {
    const { vq, z } = separated(4);
    z.requiresGrad = true;
    vq.quantize(z).codebookLoss.backward();
    assert.equal(z.grad, null, "sg(z): no gradient to the encoder");
    assert.ok(hostGrad(vq.codebook)!.some((g) => g !== 0));
    // quantize reads vq.codebook itself, the tensor gradCheck perturbs.
    gradCheck(() => vq.quantize(z).codebookLoss, [vq.codebook], { eps: 1e-3, samples: 24 });
  });

  test("commitment loss moves only the encoder, scaled by β; gradient matches finite differences", () => {
    const { vq, z } = separated(5);
    z.requiresGrad = true;
    vq.codebook.grad = null;
    const q = vq.quantize(z);
    q.commitLoss.backward();
    assert.equal(vq.codebook.grad, null, "sg(e): no gradient to the codebook");
    assert.ok(Math.abs(q.commitLoss.item() - 0.25 * q.codebookLoss.item()) < 1e-7);
    gradCheck(([x]) => vq.quantize(x!).commitLoss, [z], { eps: 1e-3, samples: 24 });
  });
});

describe("codes", () => {
  test("encodeCodes and decodeCodes: shapes, chunking, agreement with forward", () => {
    const vq = new VqVae({ ...TINY, imageChannels: 1 }, new Rng(6));
    const x = randn([3, 1, 16, 8], new Rng(7));
    const codes = vq.encodeCodes(x);
    assert.equal(codes.length, 3 * 4 * 2);
    assert.ok(codes.every((k) => k >= 0 && k < 8));
    assert.deepEqual(vq.encodeCodes(x, { batchSize: 2 }), codes);
    assert.throws(() => vq.encodeCodes(x, { batchSize: 0 }), /^Error: vqvae: batchSize must be/);
    const out = vq.forward(x);
    assert.deepEqual(out.codes, codes);
    const images = vq.decodeCodes(codes, 3, 4, 2);
    assert.deepEqual(images.shape, [3, 1, 16, 8]);
    for (let i = 0; i < images.size; i++)
      assert.ok(Math.abs(images.f32[i]! - out.recon.f32[i]!) < 1e-4);
    assert.throws(() => vq.decodeCodes(codes, 3, 4, 3), /24 codes for 3 images of 4×3/);
    assert.throws(
      () => vq.decodeCodes(new Int32Array([0, 9]), 1, 1, 2),
      /code 9 at index 1 is outside \[0, 8\)/,
    );
  });
});

describe("files", () => {
  const makeSaved = () => {
    const vq = new VqVae({ ...TINY, codebookSize: 6 }, new Rng(8));
    const dir = mkdtempSync(join(tmpdir(), "vqvae-test-"));
    dirs.push(dir);
    return { vq, dir, files: saveVqVae(vq, dir, { note: "test" }) };
  };

  test("save then load gives identical codes and images", () => {
    const { vq, dir, files } = makeSaved();
    assert.deepEqual(files, [join(dir, "vqvae.safetensors"), join(dir, "vqvae.json")]);
    const json = JSON.parse(readFileSync(files[1]!, "utf8"));
    assert.equal(json.note, "test");
    assert.equal(json.config.codebookSize, 6);
    const loaded = loadVqVae(dir);
    assert.deepEqual(loaded.config, vq.config);
    const x = randn([2, 3, 16, 16], new Rng(9));
    const codes = vq.encodeCodes(x);
    assert.deepEqual(loaded.encodeCodes(x), codes);
    assert.deepEqual(loaded.decodeCodes(codes, 2, 4, 4).f32, vq.decodeCodes(codes, 2, 4, 4).f32);
  });

  /** Returns the load error after rewriting the saved vqvae.safetensors through `edit`. */
  const message = (
    edit: (
      t: Record<string, { shape: number[]; data: Float32Array }>,
      m: Record<string, string>,
    ) => void,
  ): string => {
    const { dir } = makeSaved();
    const path = join(dir, "vqvae.safetensors");
    const f = readSafetensorsFile(path);
    const tensors = Object.fromEntries(
      Object.entries(f.tensors).map(([k, v]) => [
        k,
        { shape: v.shape, data: (v.data as Float32Array).slice() },
      ]),
    );
    edit(tensors, f.metadata);
    writeSafetensorsFile(path, tensors, f.metadata);
    try {
      loadVqVae(dir);
    } catch (e) {
      return (e as Error).message;
    }
    return "no error";
  };

  test("a wrong tensor shape names the file and the tensor", () => {
    const msg = message((t) => {
      t["codebook"] = { shape: [5, 3], data: new Float32Array(15) };
    });
    assert.match(
      msg,
      /vqvae\.safetensors: tensor "codebook" has shape \[5, 3\], expected \[6, 3\]/,
    );
  });

  test("a bad or missing config field names the file and the field", () => {
    const bad = message((_, m) => {
      m["config"] = JSON.stringify({ ...JSON.parse(m["config"]!), codebookSize: "many" });
    });
    assert.match(
      bad,
      /vqvae\.safetensors: __metadata__\.config: field "codebookSize" must be an integer/,
    );
    const missing = message((_, m) => {
      const { commitment: _c, ...rest } = JSON.parse(m["config"]!);
      m["config"] = JSON.stringify(rest);
    });
    assert.match(missing, /vqvae\.safetensors: __metadata__\.config: missing field "commitment"/);
    const vae = message((_, m) => {
      m["format"] = "transfusion-vae/1";
    });
    assert.match(
      vae,
      /"__metadata__\.format" is "transfusion-vae\/1", expected "transfusion-vqvae\/1"/,
    );
  });

  test("a missing folder names the file", () => {
    assert.throws(() => loadVqVae("/nonexistent/vq"), /\/nonexistent\/vq\/vqvae\.safetensors/);
  });
});
