// Forward noising and its inversions: x_t statistics, timestep draws under the noise cap,
// and x0/ε recovery.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  addNoise,
  CAPTION_NOISE_CAP,
  epsFromX0,
  predictX0,
  sampleTimestep,
} from "../../src/diffusion/noise.js";
import { cosineSchedule } from "../../src/diffusion/schedule.js";
import { Rng } from "../../src/tensor/rng.js";
import { maxAbsDiff } from "../helpers.js";

const schedule = cosineSchedule();

test("addNoise: for fixed x0, x_t has mean √ᾱ·x0 and variance 1−ᾱ", () => {
  const rng = new Rng(3);
  const x0 = Float32Array.from([1.5, -0.7, 0, 2.2]);
  const n = 20_000;
  const eps = new Float32Array(x0.length);
  const xt = new Float32Array(x0.length);
  for (const t of [0, 100, 500, 900, 999]) {
    const ab = schedule.alphasCumprod[t]!;
    const sum = new Float64Array(x0.length);
    const sumSq = new Float64Array(x0.length);
    for (let k = 0; k < n; k++) {
      addNoise(x0, rng.fillNormal(eps), t, schedule, xt);
      for (let i = 0; i < x0.length; i++) {
        sum[i] += xt[i]!;
        sumSq[i] += xt[i]! ** 2;
      }
    }
    for (let i = 0; i < x0.length; i++) {
      const mean = sum[i]! / n;
      const variance = sumSq[i]! / n - mean * mean;
      // Mean: 5 standard errors; variance: 5 standard errors of a Gaussian sample variance
      // (√(2/n) relative), plus float32 rounding of x_t.
      const meanTol = 5 * Math.sqrt((1 - ab) / n) + 1e-6;
      assert.ok(Math.abs(mean - Math.sqrt(ab) * x0[i]!) < meanTol, `t=${t} i=${i} mean ${mean}`);
      const varTol = 5 * Math.sqrt(2 / n) * (1 - ab) + 1e-6;
      assert.ok(Math.abs(variance - (1 - ab)) < varTol, `t=${t} i=${i} variance ${variance}`);
    }
  }
});

test("addNoise writes in place when out aliases x0, and checks lengths", () => {
  const x0 = Float32Array.from([1, 2, 3]);
  const eps = Float32Array.from([0.5, -0.5, 1]);
  const expected = addNoise(x0, eps, 250, schedule);
  const same = addNoise(x0, eps, 250, schedule, x0);
  assert.equal(same, x0);
  assert.deepEqual(x0, expected);
  assert.throws(
    () => addNoise(x0, new Float32Array(2), 0, schedule),
    /addNoise: argument 1 has length 2/,
  );
  assert.throws(() => addNoise(x0, eps, 1000, schedule), /timestep 1000/);
});

test("sampleTimestep: uniform over [0, T) and never reaches the caption noise cap", () => {
  const rng = new Rng(11);
  const n = 50_000;
  const counts = new Float64Array(1000);
  let capped = 0;
  let minCapped = Infinity;
  let maxCapped = -Infinity;
  for (let k = 0; k < n; k++) {
    const t = sampleTimestep(rng, 1000);
    assert.ok(Number.isInteger(t) && t >= 0 && t < 1000);
    counts[t]! += 1;
    const c = sampleTimestep(rng, 1000, CAPTION_NOISE_CAP);
    assert.ok(Number.isInteger(c) && c >= 0 && c < 500, `capped draw ${c}`);
    capped += c;
    minCapped = Math.min(minCapped, c);
    maxCapped = Math.max(maxCapped, c);
  }
  assert.equal(minCapped, 0);
  assert.equal(maxCapped, 499);
  // Mean of U{0..499} is 249.5 with sd 144/√n ≈ 0.65.
  assert.ok(Math.abs(capped / n - 249.5) < 4, `capped mean ${capped / n}`);
  // Each half of the full range gets about half the draws.
  const low = counts.slice(0, 500).reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(low / n - 0.5) < 0.01, `low fraction ${low / n}`);
  assert.throws(() => sampleTimestep(rng, 1000, 0), /cap must be an integer in \[1, 1000\]/);
  assert.throws(() => sampleTimestep(rng, 1000, 1001), /cap/);
});

test("predictX0 and epsFromX0 invert addNoise", () => {
  const rng = new Rng(5);
  const x0 = rng.fillNormal(new Float32Array(64));
  const eps = rng.fillNormal(new Float32Array(64));
  for (const t of [0, 300, 700]) {
    const xt = addNoise(x0, eps, t, schedule);
    assert.ok(maxAbsDiff(predictX0(xt, eps, t, schedule), x0) < 1e-4, `x0 at t=${t}`);
    assert.ok(maxAbsDiff(epsFromX0(xt, x0, t, schedule), eps) < 1e-3, `ε at t=${t}`);
  }
});

test("predictX0 clips to ±clip only when asked", () => {
  const x0 = Float32Array.from([-5, -0.5, 0.5, 5]);
  const eps = Float32Array.from([0.1, 0.2, -0.3, 0.4]);
  const xt = addNoise(x0, eps, 100, schedule);
  const free = predictX0(xt, eps, 100, schedule);
  assert.ok(maxAbsDiff(free, x0) < 1e-4);
  const clipped = predictX0(xt, eps, 100, schedule, 1);
  assert.equal(clipped[0], -1);
  assert.equal(clipped[3], 1);
  assert.equal(clipped[1], free[1]);
  assert.equal(clipped[2], free[2]);
  assert.throws(() => predictX0(xt, eps, 100, schedule, 0), /x0 clip must be a positive number/);
});
