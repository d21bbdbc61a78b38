// The parity FLOP ratio: interpolation in log FLOPs and the two open-ended cases; the FLOP rule
// for the patch codec.
import assert from "node:assert/strict";
import { test } from "node:test";
import { codecMacsPerImage, runTrainingFlops, trainStepFlops } from "../../src/bench/flops.js";
import { formatParity, parityRatio } from "../../src/experiment/parity.js";
import { makeConfig } from "../../src/model/config.js";
import { Transfusion } from "../../src/model/transfusion.js";
import { Rng } from "../../src/tensor/rng.js";

const discrete = [
  { flops: 1e12, value: 60 },
  { flops: 8e12, value: 30 },
  { flops: 4e12, value: 40 },
];

test("parity interpolates Transfusion's curve in log FLOPs to the discrete model's best", () => {
  // Lower is better: the discrete best is 30 at 8e12; Transfusion crosses 30 halfway (in log
  // FLOPs) between 1e12 (40) and 4e12 (20), at 2e12.
  const tf = [
    { flops: 4e12, value: 20 },
    { flops: 0.25e12, value: 50 },
    { flops: 1e12, value: 40 },
  ];
  const p = parityRatio(tf, discrete, "lower")!;
  assert.equal(p.bound, "interpolated");
  assert.equal(p.target, 30);
  assert.equal(p.targetFlops, 8e12);
  assert.ok(Math.abs(p.flops - 2e12) / 2e12 < 1e-9, `flops ${p.flops}`);
  assert.ok(Math.abs(p.ratio - 0.25) < 1e-9);
  assert.equal(formatParity(p), "0.25");
});

test("parity says 'at most' when the smallest budget already matches, 'more than' when none does", () => {
  const better = parityRatio(
    [
      { flops: 1e12, value: 10 },
      { flops: 2e12, value: 5 },
    ],
    discrete,
    "lower",
  )!;
  assert.equal(better.bound, "at most");
  assert.equal(formatParity(better), "≤ 0.13");
  const worse = parityRatio(
    [
      { flops: 1e12, value: 90 },
      { flops: 16e12, value: 31 },
    ],
    discrete,
    "lower",
  )!;
  assert.equal(worse.bound, "more than");
  assert.equal(formatParity(worse), "> 2.00");
  // Higher is better: the discrete best is 60 at its smallest budget.
  const acc = parityRatio(
    [
      { flops: 0.5e12, value: 40 },
      { flops: 2e12, value: 80 },
    ],
    discrete,
    "higher",
  )!;
  assert.equal(acc.targetFlops, 1e12);
  assert.ok(Math.abs(acc.flops - 1e12) / 1e12 < 1e-9);
  assert.equal(parityRatio([], discrete, "lower"), null);
});

test("training FLOPs add the linear codec's patch projections to the transformer's", () => {
  const c = makeConfig("tiny", { vocab: 64, latentSize: 4, patchSize: 2 });
  const m = new Transfusion(c, new Rng(1));
  const P = c.latentChannels * 4;
  const n = 4;
  // Timestep MLP (128 → d → d) once per image, projections in and out once per patch.
  const expected = 128 * c.dim + c.dim * c.dim + 2 * P * c.dim * n;
  assert.equal(codecMacsPerImage(m), expected);
  const N = m.layers.reduce((s, b) => s + b.parameterCount(), 0) + m.head.parameterCount();
  const step = trainStepFlops(N, c.layers, 32, c.dim, 2);
  assert.equal(runTrainingFlops(m, 10, 2, 32, 7), 10 * step + 6 * expected * 7);
  const d = new Transfusion(
    makeConfig("tiny", {
      vocab: 80,
      imageCodes: 16,
      latentChannels: 1,
      latentSize: 4,
      patchSize: 1,
    }),
    new Rng(1),
  );
  assert.equal(codecMacsPerImage(d), 0);
});
