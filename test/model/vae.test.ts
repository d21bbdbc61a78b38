// The image VAE: shapes for several configs, gradients to every parameter, a short training
// run that clearly learns, exact save/load, clear errors on bad files, and latent scaling.
// Tiny configs (16×16 images, width 8) so everything runs in seconds on the js backend.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { getDataset } from "../../src/data/datasets/index.js";
import type { Image } from "../../src/data/image.js";
import { imagesToTensor } from "../../src/data/image.js";
import { loadVae, saveVae } from "../../src/io/vae-files.js";
import { Vae, type VaeConfig, vaeConfig } from "../../src/model/vae.js";
import { abs, add, mean, sub } from "../../src/tensor/ops/index.js";
import { Rng } from "../../src/tensor/rng.js";
import { readSafetensorsFile, writeSafetensorsFile } from "../../src/tensor/safetensors.js";
import { randn } from "../../src/tensor/tensor.js";
import {
  cacheLatents,
  loadLatentCache,
  reconstructionPsnr,
  setLatentScaling,
  trainVae,
} from "../../src/train/vae-train.js";
import { hostGrad } from "../helpers.js";

const TINY: Partial<VaeConfig> = { baseChannels: 8, groups: 4, levels: 2 };
const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "vae-test-"));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function shapeImages(n: number, split: "train" | "test" = "train"): Promise<Image[]> {
  const ds = await getDataset("shapes", { imageSize: 16 });
  const s = ds.split(split);
  return Array.from({ length: n }, (_, i) => s.get(i).image);
}

describe("VAE shapes", () => {
  const cases: Array<{
    levels: number;
    imageChannels: 1 | 3;
    latentChannels: number;
    size: number;
  }> = [
    { levels: 1, imageChannels: 1, latentChannels: 2, size: 8 },
    { levels: 2, imageChannels: 3, latentChannels: 4, size: 16 },
    { levels: 3, imageChannels: 3, latentChannels: 4, size: 16 },
    { levels: 3, imageChannels: 1, latentChannels: 8, size: 24 },
  ];
  for (const c of cases) {
    test(`levels ${c.levels}, ${c.imageChannels} channel(s): ${c.size}² → ${c.size >> c.levels}²×${c.latentChannels}`, () => {
      const { size, ...config } = c;
      const vae = new Vae({ ...TINY, ...config }, new Rng(1));
      const h = size >> c.levels;
      const x = randn([3, c.imageChannels, size, size], new Rng(2));
      const { mean: mu, logvar } = vae.encode(x);
      assert.deepEqual(mu.shape, [3, c.latentChannels, h, h]);
      assert.deepEqual(logvar.shape, [3, c.latentChannels, h, h]);
      assert.deepEqual(vae.decode(mu).shape, [3, c.imageChannels, size, size]);
      // Batched convenience calls equal one batch, whatever the chunking.
      const all = vae.encodeLatents(x);
      const chunked = vae.encodeLatents(x, { batchSize: 2 });
      assert.deepEqual(all.shape, [3, c.latentChannels, h, h]);
      for (let i = 0; i < all.size; i++) assert.ok(Math.abs(all.f32[i]! - chunked.f32[i]!) < 1e-5);
      assert.deepEqual(vae.decodeLatents(all, { batchSize: 2 }).shape, [
        3,
        c.imageChannels,
        size,
        size,
      ]);
    });
  }

  test("an image size not divisible by 2^levels is refused", () => {
    const vae = new Vae({ ...TINY, levels: 2 }, new Rng(1));
    assert.throws(
      () => vae.encode(randn([1, 3, 18, 18], new Rng(1))),
      /18×18 is not divisible by the downsampling factor 4/,
    );
  });

  test("config validation names the field", () => {
    assert.throws(
      () => vaeConfig({ baseChannels: 6, groups: 4 }),
      /field "groups" \(4\) must divide every width/,
    );
    assert.throws(
      () => vaeConfig({ levels: 2, channelMultipliers: [1, 2] }),
      /"channelMultipliers" must list 3 integers/,
    );
    assert.throws(() => vaeConfig({ imageChannels: 2 as 1 }), /"imageChannels" must be 1 or 3/);
    assert.throws(() => vaeConfig({ latentChannels: 0 }), /"latentChannels" must be an integer/);
  });
});

test("a gradient reaches every parameter", () => {
  const rng = new Rng(3);
  const vae = new Vae({ ...TINY, resBlocksPerLevel: 2 }, rng);
  const x = randn([2, 3, 16, 16], rng);
  const { mean: mu, logvar } = vae.encode(x);
  const xr = vae.decode(vae.sample(mu, logvar, rng));
  add(mean(abs(sub(xr, x))), mean(logvar)).backward();
  for (const [name, p] of vae.namedParameters()) {
    assert.ok(p.grad, `${name} has no gradient`);
    let nonzero = false;
    for (const g of p.grad ? hostGrad(p)! : []) {
      assert.ok(Number.isFinite(g), `${name} has a non-finite gradient`);
      if (g !== 0) nonzero = true;
    }
    assert.ok(nonzero, `${name} has an all-zero gradient`);
  }
});

test("a short training run clearly lowers reconstruction error", async () => {
  const images = await shapeImages(40);
  const losses: number[] = [];
  const r = await trainVae({
    data: images.slice(0, 32),
    testData: images.slice(32),
    config: TINY,
    steps: 60,
    batchSize: 8,
    lr: 3e-3,
    seed: 7,
    scaleImages: 16,
    progressEvery: 1,
    onProgress: (p) => losses.push(p.recon),
  });
  const first = (losses[0]! + losses[1]! + losses[2]!) / 3;
  assert.ok(r.finalRecon < 0.5 * first, `recon ${first.toFixed(3)} → ${r.finalRecon.toFixed(3)}`);
  const untrained = reconstructionPsnr(new Vae({ ...TINY }, new Rng(7)), images.slice(32));
  assert.ok(r.psnr > untrained + 5, `PSNR ${untrained.toFixed(1)} → ${r.psnr.toFixed(1)} dB`);
});

test("training is reproducible for a seed", async () => {
  const images = await shapeImages(12);
  const run = () =>
    trainVae({ data: images, config: TINY, steps: 4, batchSize: 4, seed: 3, scaleImages: 8 });
  const [a, b] = [await run(), await run()];
  assert.equal(a.psnr, b.psnr);
  assert.equal(a.vae.scalingFactor, b.vae.scalingFactor);
  const pb = b.vae.parameters();
  a.vae.parameters().forEach((p, i) => {
    assert.deepEqual(p.f32, pb[i]!.f32);
  });
});

describe("checkpoint", () => {
  const makeSaved = () => {
    const vae = new Vae({ ...TINY, imageChannels: 1, latentChannels: 3 }, new Rng(5));
    vae.scalingFactor = 0.37;
    vae.shiftFactor = -0.12;
    const dir = tempDir();
    const files = saveVae(vae, dir, { note: "test" });
    return { vae, dir, files };
  };

  test("save then load gives identical outputs and factors", () => {
    const { vae, dir, files } = makeSaved();
    assert.deepEqual(files, [join(dir, "vae.safetensors"), join(dir, "vae.json")]);
    const json = JSON.parse(readFileSync(join(dir, "vae.json"), "utf8"));
    assert.equal(json.note, "test");
    assert.equal(json.config.latentChannels, 3);
    const loaded = loadVae(dir);
    assert.deepEqual(loaded.config, vae.config);
    assert.equal(loaded.scalingFactor, 0.37);
    assert.equal(loaded.shiftFactor, -0.12);
    const x = randn([2, 1, 16, 16], new Rng(9));
    assert.deepEqual(loaded.encodeLatents(x).f32, vae.encodeLatents(x).f32);
    const z = randn([2, 3, 4, 4], new Rng(10));
    assert.deepEqual(loaded.decodeLatents(z).f32, vae.decodeLatents(z).f32);
  });

  type Edit = (
    tensors: Record<string, { shape: number[]; data: Float32Array }>,
    metadata: Record<string, string>,
  ) => void;
  /** Returns the load error after rewriting a saved vae.safetensors through `edit`. */
  const message = (edit: Edit): string => {
    const { dir } = makeSaved();
    const path = join(dir, "vae.safetensors");
    const f = readSafetensorsFile(path);
    const tensors = Object.fromEntries(
      Object.entries(f.tensors).map(([k, v]) => [
        k,
        { shape: v.shape, data: v.data.slice() as Float32Array },
      ]),
    );
    edit(tensors, f.metadata);
    writeSafetensorsFile(path, tensors, f.metadata);
    try {
      loadVae(dir);
    } catch (e) {
      return (e as Error).message;
    }
    return "no error";
  };

  test("a missing tensor is named", () => {
    const msg = message((t) => delete t["decoder.conv_out.weight"]);
    assert.match(msg, /vae\.safetensors: missing tensor "decoder\.conv_out\.weight"/);
  });
  test("a wrong shape is named", () => {
    const msg = message((t) => {
      t["encoder.conv_in.bias"] = { shape: [4], data: new Float32Array(4) };
    });
    assert.match(msg, /tensor "encoder\.conv_in\.bias" has shape \[4\], expected \[8\]/);
  });
  test("an unexpected tensor is named", () => {
    const msg = message((t) => {
      t["extra.weight"] = { shape: [1], data: new Float32Array(1) };
    });
    assert.match(msg, /unexpected tensor "extra\.weight"/);
  });
  test("a wrong config is named", () => {
    const msg = message((_, m) => {
      m["config"] = JSON.stringify({ ...JSON.parse(m["config"]!), levels: "two" });
    });
    assert.match(msg, /vae\.safetensors: __metadata__\.config: field "levels" must be an integer/);
    const missing = message((_, m) => {
      const { groups: _groups, ...rest } = JSON.parse(m["config"]!);
      m["config"] = JSON.stringify(rest);
    });
    assert.match(missing, /__metadata__\.config: missing field "groups"/);
    const mismatched = message((_, m) => {
      m["config"] = JSON.stringify({ ...JSON.parse(m["config"]!), latentChannels: 4 });
    });
    assert.match(
      mismatched,
      /tensor "encoder\.conv_out\.weight" has shape \[6, 16, 3, 3\], expected \[8, 16, 3, 3\]/,
    );
  });
  test("a missing scaling factor is named", () => {
    const msg = message((_, m) => delete m["scaling_factor"]);
    assert.match(msg, /missing metadata field "__metadata__\.scaling_factor"/);
  });
  test("a truncated file and a missing folder give errors naming the file", () => {
    const { dir } = makeSaved();
    const path = join(dir, "vae.safetensors");
    writeFileSync(path, readFileSync(path).subarray(0, 100));
    assert.throws(
      () => loadVae(dir),
      (e: Error) => e.message.startsWith(path),
    );
    assert.throws(() => loadVae(join(dir, "nope")), /nope\/vae\.safetensors: cannot read/);
  });
});

test("the scaling factor makes latents zero-mean and unit-variance on their data", async () => {
  const vae = new Vae(TINY, new Rng(11));
  const x = imagesToTensor(await shapeImages(24));
  const { scalingFactor, shiftFactor } = setLatentScaling(vae, x);
  assert.ok(scalingFactor > 0 && Number.isFinite(shiftFactor));
  const z = vae.encodeLatents(x).f32;
  const m = z.reduce((s, v) => s + v, 0) / z.length;
  const v = z.reduce((s, u) => s + (u - m) ** 2, 0) / z.length;
  assert.ok(Math.abs(m) < 1e-4, `mean ${m}`);
  assert.ok(Math.abs(v - 1) < 1e-3, `variance ${v}`);
  // decodeLatents undoes the scaling: same images as decoding the raw means.
  const raw = vae.encode(x).mean;
  const direct = vae.decode(raw).f32;
  const viaScaled = vae.decodeLatents(vae.encodeLatents(x)).f32;
  for (let i = 0; i < direct.length; i += 97)
    assert.ok(Math.abs(direct[i]! - viaScaled[i]!) < 1e-3);
});

test("cached latents round-trip through their file", async () => {
  const vae = new Vae(TINY, new Rng(12));
  vae.scalingFactor = 2;
  const ds = await getDataset("shapes", { imageSize: 16 });
  const path = join(tempDir(), "cache", "latents.safetensors");
  const cache = cacheLatents(vae, ds, "test", { limit: 10, batchSize: 4, path });
  assert.deepEqual(cache.shape, [10, 4, 4, 4]);
  const expected = vae.encodeLatents(
    imagesToTensor(Array.from({ length: 10 }, (_, i) => ds.split("test").get(i).image)),
  );
  assert.deepEqual(cache.data, expected.f32);
  const loaded = loadLatentCache(path);
  assert.deepEqual(loaded.shape, cache.shape);
  assert.deepEqual(loaded.data, cache.data);
  assert.equal(loaded.scalingFactor, 2);
});
