// Flow matching: the straight-path interpolation and its velocity, the continuous-to-integer
// timestep mapping, and the Euler sampler against exact velocity oracles.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  FlowEulerSampler,
  flowInterpolate,
  flowTimestep,
  flowVelocityTarget,
  sampleFlowTime,
} from "../../src/diffusion/flow.js";
import { type Denoiser, runSampler } from "../../src/diffusion/samplers.js";
import { Rng } from "../../src/tensor/rng.js";
import { maxAbsDiff } from "../helpers.js";

/**
 * Returns the exact velocity oracle E[ε − x0 | x_t] for data drawn from `pts` with
 * probabilities `weights`, reading the continuous time of step i from the sampler. Under
 * x_t = (1−t)·x0 + t·ε: P(x0 = p | x_t) ∝ w_p·exp(−|x_t − (1−t)·p|² / (2t²)), and with
 * m = E[x0 | x_t], E[ε | x_t] = (x_t − (1−t)·m)/t, so E[v | x_t] = (x_t − m)/t.
 */
function mixtureVelocity(
  sampler: FlowEulerSampler,
  pts: Float32Array[],
  weights: number[],
): Denoiser {
  const times = sampler.times();
  return (xt, _timestep, i) => {
    const t = times[i]!;
    const logits = pts.map((p, k) => {
      let d2 = 0;
      for (let j = 0; j < xt.length; j++) d2 += (xt[j]! - (1 - t) * p[j]!) ** 2;
      return Math.log(weights[k]!) - d2 / (2 * t * t);
    });
    const mx = Math.max(...logits);
    const w = logits.map((l) => Math.exp(l - mx));
    const z = w.reduce((a, b) => a + b, 0);
    const out = new Float32Array(xt.length);
    for (let j = 0; j < xt.length; j++) {
      let m = 0;
      for (let k = 0; k < pts.length; k++) m += (w[k]! / z) * pts[k]![j]!;
      out[j] = (xt[j]! - m) / t;
    }
    return out;
  };
}

test("flowInterpolate runs from x0 at t = 0 to ε at t = 1 with velocity ε − x0", () => {
  const rng = new Rng(1);
  const x0 = rng.fillNormal(new Float32Array(32));
  const eps = rng.fillNormal(new Float32Array(32));
  assert.deepEqual(flowInterpolate(x0, eps, 0), x0);
  assert.deepEqual(flowInterpolate(x0, eps, 1), eps);
  const h = 0.25;
  const a = flowInterpolate(x0, eps, 0.5);
  const b = flowInterpolate(x0, eps, 0.5 + h);
  const fd = a.map((v, i) => (b[i]! - v) / h);
  assert.ok(maxAbsDiff(fd, flowVelocityTarget(x0, eps)) < 1e-5);
  assert.throws(() => flowInterpolate(x0, eps, 1.5), /time must be in \[0, 1\]/);
});

test("flowTimestep maps [0, 1] onto the integer embedding 0 … T−1 by rounding", () => {
  assert.equal(flowTimestep(0, 1000), 0);
  assert.equal(flowTimestep(1, 1000), 999);
  assert.equal(flowTimestep(0.5, 1000), 500);
  assert.equal(flowTimestep(0.25, 101), 25);
  const s = new FlowEulerSampler({ steps: 4 });
  assert.deepEqual(s.times(), [1, 0.75, 0.5, 0.25]);
  assert.deepEqual(s.timesteps(), [999, 749, 500, 250]);
});

test("sampleFlowTime stays below maxTime (0.5 = the caption noise cap of 500 of 1000)", () => {
  const rng = new Rng(2);
  let hi = 0;
  for (let k = 0; k < 10_000; k++) {
    const t = sampleFlowTime(rng, 0.5);
    assert.ok(t >= 0 && t < 0.5);
    hi = Math.max(hi, t);
    const full = sampleFlowTime(rng);
    assert.ok(full >= 0 && full < 1);
  }
  assert.ok(hi > 0.49);
  assert.throws(() => sampleFlowTime(rng, 0), /maxTime/);
});

test("flow Euler: single-point data with the exact velocity comes back to that point", () => {
  const rng = new Rng(21);
  const x0 = rng.fillNormal(new Float32Array(64));
  for (const steps of [1, 50, 250]) {
    const sampler = new FlowEulerSampler({ steps });
    const times = sampler.times();
    // For one point, v = ε − x0 with ε = (x_t − (1−t)·x0)/t, i.e. v = (x_t − x0)/t.
    const oracle: Denoiser = (xt, _ts, i) => xt.map((v, j) => (v - x0[j]!) / times[i]!);
    const out = runSampler(sampler, rng.fillNormal(new Float32Array(64)), oracle, rng);
    assert.ok(maxAbsDiff(out, x0) < 1e-5, `K = ${steps}: error ${maxAbsDiff(out, x0)}`);
  }
});

const A = Float32Array.from([1, -0.5, 0.8, 1.2]);
const B = Float32Array.from([-1, 0.5, -0.8, -1.2]);

for (const [weightA, expected, tol] of [
  [0.5, 200, 50],
  [0.25, 100, 43],
] as const) {
  test(`flow Euler-100: two points with weights ${weightA}:${1 - weightA} are reproduced`, () => {
    const rng = new Rng(99);
    const sampler = new FlowEulerSampler({ steps: 100 });
    const oracle = mixtureVelocity(sampler, [A, B], [weightA, 1 - weightA]);
    let first = 0;
    for (let k = 0; k < 400; k++) {
      const out = runSampler(sampler, rng.fillNormal(new Float32Array(4)), oracle, rng);
      const dA = maxAbsDiff(out, A);
      const dB = maxAbsDiff(out, B);
      // The last step returns x_t − t·v = E[x0 | x_t] at t = 0.01, where the posterior is certain.
      assert.ok(
        Math.min(dA, dB) < 1e-5,
        `sample ${k} is ${Math.min(dA, dB)} from the nearest point`,
      );
      if (dA < dB) first++;
    }
    // Binomial(400, p): 5 sd.
    assert.ok(Math.abs(first - expected) <= tol, `${first} of 400 samples at the first point`);
  });
}

test("flow Euler is deterministic and draws no random numbers", () => {
  const sampler = new FlowEulerSampler({ steps: 20 });
  const oracle = mixtureVelocity(sampler, [A, B], [0.5, 0.5]);
  const rng = new Rng(6);
  const start = rng.fillNormal(new Float32Array(4));
  const before = rng.getState();
  const a = runSampler(sampler, Float32Array.from(start), oracle, rng);
  const b = runSampler(sampler, Float32Array.from(start), oracle, new Rng(123));
  assert.deepEqual(rng.getState(), before);
  assert.deepEqual(a, b);
});

test("flow Euler x0Clip bounds the sample; bad arguments throw", () => {
  const far = Float32Array.from([5, -5, 0.5]);
  const sampler = new FlowEulerSampler({ steps: 20, x0Clip: 3 });
  const times = sampler.times();
  const oracle: Denoiser = (xt, _ts, i) => xt.map((v, j) => (v - far[j]!) / times[i]!);
  const out = runSampler(sampler, new Rng(3).fillNormal(new Float32Array(3)), oracle, new Rng(0));
  assert.ok(maxAbsDiff(out, [3, -3, 0.5]) < 1e-5, `clipped sample ${out}`);
  assert.throws(() => new FlowEulerSampler({ steps: 0 }), /steps must be an integer/);
  assert.throws(() => sampler.step(20, out, out, new Rng(0)), /step 20/);
});
