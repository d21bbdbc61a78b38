// PyTorch parity of the KL-VAE: small TypeScript VAEs saved with saveVae, loaded by
// python/transfusion/vae.py (python/tests/vae.py), must encode and decode as the TypeScript does.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { saveVae } from "../../src/io/vae-files.js";
import { Vae, type VaeConfig } from "../../src/model/vae.js";
import { Rng } from "../../src/tensor/rng.js";
import { readSafetensorsFile, writeSafetensorsFile } from "../../src/tensor/safetensors.js";
import { noGrad, Tensor } from "../../src/tensor/tensor.js";
import { relErr, runPythonJson, skipWithoutTorch, tempDir } from "./helpers.js";

/** Largest relative error allowed (max |a − b| / max |a|). */
const TOL = 1e-4;

const CASES: Array<{
  name: string;
  config: Partial<VaeConfig>;
  side: number;
  scale: number;
  shift: number;
}> = [
  {
    name: "RGB, 2 levels, multipliers [1, 2, 3], 2 res blocks per level",
    config: {
      imageChannels: 3,
      latentChannels: 4,
      levels: 2,
      baseChannels: 8,
      channelMultipliers: [1, 2, 3],
      resBlocksPerLevel: 2,
      groups: 4,
    },
    side: 16,
    scale: 0.8,
    shift: 0.1,
  },
  {
    name: "grey, 1 level, default multipliers",
    config: { imageChannels: 1, latentChannels: 2, levels: 1, baseChannels: 8, groups: 4 },
    side: 8,
    scale: 1.3,
    shift: -0.2,
  },
];

interface CaseData {
  dir: string;
  mean: Float32Array;
  logvar: Float32Array;
  encoded: Float32Array;
  decoded: Float32Array;
}

function buildCase(dir: string, c: (typeof CASES)[number], seed: number): CaseData {
  const vae = new Vae(c.config, new Rng(seed));
  const rng = new Rng(seed + 1);
  // Norm gains and biases start at 1 and 0; move them so that a misread one shows.
  for (const [, p] of vae.namedParameters()) {
    if (p.rank === 1) for (let i = 0; i < p.size; i++) p.f32[i]! += 0.2 * rng.normal();
  }
  vae.scalingFactor = c.scale;
  vae.shiftFactor = c.shift;
  saveVae(vae, join(dir, "vae"));

  const { imageChannels: C, latentChannels: L } = vae.config;
  const s = c.side;
  const h = s / vae.downsampleFactor;
  const images = new Tensor(new Float32Array(3 * C * s * s), [3, C, s, s]);
  rng.fillUniform(images.f32, -1, 1);
  const latents = new Tensor(new Float32Array(3 * L * h * h), [3, L, h, h]);
  rng.fillNormal(latents.f32);
  writeSafetensorsFile(join(dir, "probe.safetensors"), {
    images: { shape: [...images.shape], data: images.f32 },
    latents: { shape: [...latents.shape], data: latents.f32 },
  });
  const { mean, logvar } = noGrad(() => vae.encode(images));
  return {
    dir,
    mean: mean.f32.slice(),
    logvar: logvar.f32.slice(),
    encoded: vae.encodeLatents(images).f32,
    decoded: vae.decodeLatents(latents).f32,
  };
}

describe("PyTorch mirror: the VAE encodes and decodes as the TypeScript", {
  skip: skipWithoutTorch(),
}, () => {
  const built: CaseData[] = [];
  let info: Record<string, { scaling_factor: number; shift_factor: number }> = {};
  let root = "";
  after(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });
  before(() => {
    root = tempDir("vae");
    CASES.forEach((c, i) => {
      built.push(buildCase(join(root, `case-${i}`), c, 10 * (i + 1)));
    });
    info = runPythonJson(
      "vae.py",
      built.map((b) => b.dir),
      120_000,
    );
  });

  CASES.forEach((c, i) => {
    test(c.name, (t) => {
      const ts = built[i]!;
      assert.equal(info[ts.dir]!.scaling_factor, c.scale);
      assert.equal(info[ts.dir]!.shift_factor, c.shift);
      const py = readSafetensorsFile(join(ts.dir, "out.safetensors")).tensors;
      const notes: string[] = [];
      for (const key of ["mean", "logvar", "encoded", "decoded"] as const) {
        const e = relErr(ts[key], py[key]!.data as Float32Array);
        notes.push(`${key} ${e.toExponential(2)}`);
        assert.ok(e <= TOL, `${key} differs: relative error ${e}`);
      }
      t.diagnostic(notes.join(", "));
    });
  });
});
