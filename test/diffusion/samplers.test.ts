// Samplers against exact oracles: a single known data point must come back exactly, and a
// two-point data distribution must be reproduced (each point reached, in the right
// proportions). Also: respaced DDPM with K = T is the plain DDPM chain, guidance at s = 1 is
// the conditional prediction, and runs are deterministic for a seed.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createSampler } from "../../src/diffusion/config.js";
import { epsFromX0 } from "../../src/diffusion/noise.js";
import {
  DdimSampler,
  DdpmSampler,
  type Denoiser,
  guide,
  runSampler,
  type Sampler,
  spacedTimesteps,
} from "../../src/diffusion/samplers.js";
import {
  cosineSchedule,
  linearSchedule,
  type NoiseSchedule,
} from "../../src/diffusion/schedule.js";
import { Rng } from "../../src/tensor/rng.js";
import { maxAbsDiff } from "../helpers.js";

const schedule = cosineSchedule();

/** Returns the exact ε for data that is the single point x0 (epsFromX0 at the model's t). */
function singlePointOracle(x0: Float32Array, s: NoiseSchedule): Denoiser {
  return (xt, t) => epsFromX0(xt, x0, t, s);
}

/**
 * Returns the exact posterior-mean oracle ε̂ = E[ε | x_t] for data drawn from the points
 * `pts` with probabilities `weights`. Under q(x_t | x0) = N(√ᾱ·x0, (1−ᾱ)I):
 *   P(x0 = p | x_t) ∝ w_p · exp(−|x_t − √ᾱ·p|² / (2(1−ᾱ))),
 *   E[x0 | x_t] = Σ_p P(p | x_t)·p,   E[ε | x_t] = (x_t − √ᾱ·E[x0 | x_t]) / √(1−ᾱ).
 */
function mixtureOracle(pts: Float32Array[], weights: number[], s: NoiseSchedule): Denoiser {
  return (xt, t) => {
    const ab = s.alphasCumprod[t]!;
    const a = Math.sqrt(ab);
    const logits = pts.map((p, k) => {
      let d2 = 0;
      for (let i = 0; i < xt.length; i++) d2 += (xt[i]! - a * p[i]!) ** 2;
      return Math.log(weights[k]!) - d2 / (2 * (1 - ab));
    });
    const m = Math.max(...logits);
    const w = logits.map((l) => Math.exp(l - m));
    const z = w.reduce((x, y) => x + y, 0);
    const out = new Float32Array(xt.length);
    for (let i = 0; i < xt.length; i++) {
      let mean = 0;
      for (let k = 0; k < pts.length; k++) mean += (w[k]! / z) * pts[k]![i]!;
      out[i] = (xt[i]! - a * mean) / Math.sqrt(1 - ab);
    }
    return out;
  };
}

/** Returns a sample: pure noise from rng, then every step of the sampler. */
function sample(sampler: Sampler, denoise: Denoiser, rng: Rng, dim: number): Float32Array {
  return runSampler(sampler, rng.fillNormal(new Float32Array(dim)), denoise, rng);
}

const ORACLE_CASES: [string, () => Sampler][] = [
  ["DDPM-250", () => new DdpmSampler(schedule)],
  ["DDPM-1000", () => new DdpmSampler(schedule, { steps: 1000 })],
  ["DDPM-250 with β variance", () => new DdpmSampler(schedule, { variance: "beta" })],
  ["DDIM-50 η=0", () => new DdimSampler(schedule, { steps: 50, eta: 0 })],
  ["DDIM-50 η=1", () => new DdimSampler(schedule, { steps: 50, eta: 1 })],
];

for (const [name, make] of ORACLE_CASES) {
  test(`${name}: single-point data with the exact ε comes back to that point`, () => {
    const rng = new Rng(21);
    const x0 = rng.fillNormal(new Float32Array(64));
    for (let k = 0; k < 5; k++) {
      const out = sample(make(), singlePointOracle(x0, schedule), rng, x0.length);
      // The last step returns x̂0 at ᾱ ≈ 1 − 4e-5; observed error ≈ 1e-9 (float32 ulp at 3 is 2e-7).
      assert.ok(maxAbsDiff(out, x0) < 1e-6, `sample ${k}: error ${maxAbsDiff(out, x0)}`);
    }
  });
}

/** Returns how many of n samples land within tol of pts[0], asserting each lands near a point. */
function countNearFirst(
  make: () => Sampler,
  pts: Float32Array[],
  weights: number[],
  n: number,
): number {
  const rng = new Rng(99);
  const oracle = mixtureOracle(pts, weights, schedule);
  let first = 0;
  for (let k = 0; k < n; k++) {
    const out = sample(make(), oracle, rng, pts[0]!.length);
    const d = pts.map((p) => maxAbsDiff(out, p));
    // At ᾱ ≈ 1 − 4e-5 the posterior is certain, so the final x̂0 is the point itself.
    assert.ok(Math.min(...d) < 1e-5, `sample ${k} is ${Math.min(...d)} from the nearest point`);
    if (d[0]! < d[1]!) first++;
  }
  return first;
}

const A = Float32Array.from([1, -0.5, 0.8, 1.2]);
const B = Float32Array.from([-1, 0.5, -0.8, -1.2]);

for (const [name, make] of [
  ["DDPM-250", () => new DdpmSampler(schedule)],
  ["DDIM-50 η=0", () => new DdimSampler(schedule, { steps: 50 })],
  ["DDIM-50 η=1", () => new DdimSampler(schedule, { steps: 50, eta: 1 })],
] as [string, () => Sampler][]) {
  test(`${name}: two equally likely points are both reached, about half the time each`, () => {
    const n = 400;
    const first = countNearFirst(make, [A, B], [0.5, 0.5], n);
    // Binomial(400, 0.5) has sd 10: allow 5 sd.
    assert.ok(Math.abs(first - n / 2) <= 50, `${first} of ${n} samples at the first point`);
  });
}

for (const [name, make] of [
  ["DDPM-250", () => new DdpmSampler(schedule)],
  ["DDIM-50 η=0", () => new DdimSampler(schedule, { steps: 50 })],
  ["DDIM-50 η=1", () => new DdimSampler(schedule, { steps: 50, eta: 1 })],
] as [string, () => Sampler][]) {
  // A symmetric pair can hide a wrong noise level (it still splits 50/50); a 1:3 prior cannot:
  // doubling DDPM's σ or dropping σ² from DDIM's direction term gives ≈170 of 400, not 100.
  test(`${name}: unequal weights (1:3) are reproduced, not just a symmetric split`, () => {
    const n = 400;
    const first = countNearFirst(make, [A, B], [0.25, 0.75], n);
    // Binomial(400, 0.25) has sd ≈ 8.7: allow 5 sd.
    assert.ok(Math.abs(first - n / 4) <= 43, `${first} of ${n} samples at the rarer point`);
  });
}

test("respaced DDPM with K = T is exactly the plain DDPM chain (Ho et al. Algorithm 2)", () => {
  const s = linearSchedule({ T: 200 });
  const sampler = new DdpmSampler(s, { steps: 200 });
  assert.deepEqual(
    sampler.timesteps(),
    Array.from({ length: 200 }, (_, i) => 199 - i),
  );
  for (let t = 0; t < 200; t++) {
    assert.ok(Math.abs(sampler.betas[t]! - s.betas[t]!) < 1e-12, `β'[${t}] vs β[${t}]`);
  }
  const denoise = mixtureOracle([A, B], [0.5, 0.5], s);
  const rngA = new Rng(8);
  const rngB = new Rng(8);
  const x = rngA.fillNormal(new Float32Array(4));
  const ref = rngB.fillNormal(new Float32Array(4));
  const z = new Float32Array(4);
  for (let t = 199; t >= 0; t--) {
    sampler.step(199 - t, x, denoise(x, t, 199 - t), rngA);
    // x_{t−1} = (x_t − β_t/√(1−ᾱ_t)·ε̂)/√α_t + σ_t z, σ_t² = β̃_t, z = 0 on the last step.
    const eps = denoise(ref, t, 199 - t);
    const beta = s.betas[t]!;
    const ab = s.alphasCumprod[t]!;
    const abPrev = t === 0 ? 1 : s.alphasCumprod[t - 1]!;
    const sigma = Math.sqrt(((1 - abPrev) / (1 - ab)) * beta);
    if (t > 0) rngB.fillNormal(z);
    for (let i = 0; i < 4; i++) {
      const mean = (ref[i]! - (beta / Math.sqrt(1 - ab)) * eps[i]!) / Math.sqrt(1 - beta);
      ref[i] = mean + (t > 0 ? sigma * z[i]! : 0);
    }
    assert.ok(maxAbsDiff(x, ref) < 1e-5, `t = ${t}: diff ${maxAbsDiff(x, ref)}`);
  }
});

test("spacedTimesteps spreads K steps over [0, T−1]; samplers call them descending", () => {
  const ts = spacedTimesteps(1000, 250);
  assert.equal(ts.length, 250);
  assert.equal(ts[0], 0);
  assert.equal(ts[249], 999);
  for (let k = 1; k < ts.length; k++) assert.ok(ts[k]! > ts[k - 1]!);
  assert.deepEqual(spacedTimesteps(1000, 1), [999]);
  assert.deepEqual(spacedTimesteps(5, 5), [0, 1, 2, 3, 4]);
  assert.deepEqual(new DdimSampler(schedule, { steps: 4 }).timesteps(), [999, 666, 333, 0]);
  assert.throws(() => spacedTimesteps(1000, 1001), /steps must be an integer in \[1, 1000\]/);
  assert.throws(() => spacedTimesteps(1000, 0), /steps/);
});

test("guide: s = 1 returns ε_c bit for bit, s = 0 returns ε_u, s = 3 extrapolates", () => {
  const rng = new Rng(4);
  const c = rng.fillNormal(new Float32Array(1000), 0, 3);
  const u = rng.fillNormal(new Float32Array(1000), 0, 3);
  assert.deepEqual(guide(c, u, 1), c);
  assert.ok(maxAbsDiff(guide(c, u, 0), u) < 1e-6);
  const g = guide(c, u, 3);
  for (let i = 0; i < 1000; i++) {
    assert.ok(Math.abs(g[i]! - (u[i]! + 3 * (c[i]! - u[i]!))) < 1e-5);
  }
  const out = Float32Array.from(c);
  assert.equal(guide(out, u, 5, out), out);
  assert.throws(() => guide(c, new Float32Array(3), 1), /guide: argument 1 has length 3/);
});

test("samplers are deterministic for a seed and differ across seeds", () => {
  const denoise = mixtureOracle([A, B], [0.5, 0.5], schedule);
  for (const make of [
    () => new DdpmSampler(schedule, { steps: 50 }),
    () => new DdimSampler(schedule, { steps: 50, eta: 1 }),
  ]) {
    const run = (seed: number) => sample(make(), denoise, new Rng(seed), 4);
    assert.deepEqual(run(1), run(1));
    assert.notDeepEqual(run(1), run(2));
  }
  // DDIM with η = 0 is a deterministic map of the starting noise: it draws nothing.
  const rng = new Rng(6);
  const x = rng.fillNormal(new Float32Array(4));
  const before = rng.getState();
  runSampler(new DdimSampler(schedule, { steps: 50 }), x, denoise, rng);
  assert.deepEqual(rng.getState(), before);
});

test("x0Clip bounds the returned sample; it is off by default", () => {
  const far = Float32Array.from([5, -5, 0.5]);
  const oracle = singlePointOracle(far, schedule);
  for (const clipped of [
    new DdpmSampler(schedule, { steps: 50, x0Clip: 3 }),
    new DdimSampler(schedule, { steps: 50, x0Clip: 3 }),
  ]) {
    const out = sample(clipped, oracle, new Rng(2), 3);
    assert.ok(maxAbsDiff(out, [3, -3, 0.5]) < 1e-4, `clipped sample ${out}`);
  }
  const free = sample(new DdpmSampler(schedule, { steps: 50 }), oracle, new Rng(2), 3);
  assert.ok(maxAbsDiff(free, far) < 1e-4);
  assert.throws(() => new DdpmSampler(schedule, { x0Clip: -1 }), /x0 clip/);
});

test("sampler steps check their arguments", () => {
  const s = new DdpmSampler(schedule, { steps: 10 });
  const x = new Float32Array(4);
  assert.throws(() => s.step(10, x, x, new Rng(0)), /step 10 is not an integer in \[0, 9\]/);
  assert.throws(() => s.step(0, x, new Float32Array(3), new Rng(0)), /length 3, expected 4/);
  assert.throws(() => new DdimSampler(schedule, { eta: 1.5 }), /eta must be in \[0, 1\]/);
});

test("createSampler: defaults to DDPM-250 and refuses a sampler that misfits the objective", () => {
  const d = createSampler({}, schedule);
  assert.ok(d instanceof DdpmSampler);
  assert.equal(d.steps, 250);
  assert.equal(d.variance, "posterior");
  assert.equal(d.x0Clip, null);
  const ddim = createSampler({ kind: "ddim", steps: 50, eta: 0.5 }, schedule);
  assert.ok(ddim instanceof DdimSampler && ddim.eta === 0.5);
  assert.equal(createSampler({ kind: "flow-euler" }, schedule, "flow").prediction, "velocity");
  assert.throws(() => createSampler({ kind: "ddpm" }, schedule, "flow"), /does not fit/);
  assert.throws(() => createSampler({ kind: "flow-euler" }, schedule), /does not fit/);
});
