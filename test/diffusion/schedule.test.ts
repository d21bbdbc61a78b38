// Noise schedules: the cosine schedule's shape and clipping, the linear schedule, the
// cumulative-product consistency of ᾱ, and timestep validation.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createSchedule } from "../../src/diffusion/config.js";
import {
  cosineSchedule,
  linearSchedule,
  type NoiseSchedule,
} from "../../src/diffusion/schedule.js";

function assertDecreasingInUnitInterval(s: NoiseSchedule): void {
  for (let t = 0; t < s.T; t++) {
    const ab = s.alphasCumprod[t]!;
    assert.ok(ab > 0 && ab < 1, `ᾱ[${t}] = ${ab} outside (0, 1)`);
    if (t > 0) assert.ok(ab < s.alphasCumprod[t - 1]!, `ᾱ not strictly decreasing at t = ${t}`);
  }
}

test("cosine schedule: ᾱ strictly decreasing from ≈1 to ≈0, β in (0, 0.999]", () => {
  const s = cosineSchedule();
  assert.equal(s.T, 1000);
  assert.equal(s.kind, "cosine");
  assertDecreasingInUnitInterval(s);
  assert.ok(s.alphasCumprod[0]! > 1 - 1e-4, `ᾱ_0 = ${s.alphasCumprod[0]}`);
  assert.ok(s.alphasCumprod[999]! < 1e-8, `ᾱ_999 = ${s.alphasCumprod[999]}`);
  for (let t = 0; t < s.T; t++) assert.ok(s.betas[t]! > 0 && s.betas[t]! <= 0.999, `β[${t}]`);
  // f(T) = 0 would make the last β exactly 1; it is clipped, and only it.
  assert.equal(s.betas[999], 0.999);
  assert.ok(s.betas[998]! < 0.999);
});

test("cosine schedule: ᾱ matches the closed form f(t+1)/f(0) before the clipped step", () => {
  const s = cosineSchedule();
  const f = (tau: number) => Math.cos(((tau / 1000 + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
  for (let t = 0; t < 999; t++) {
    const closed = f(t + 1) / f(0);
    assert.ok(Math.abs(s.alphasCumprod[t]! - closed) <= 1e-12 + 1e-9 * closed, `t = ${t}`);
  }
  // The clipped tail: ᾱ_999 = ᾱ_998 · (1 − 0.999), not the closed form's 0.
  assert.ok(Math.abs(s.alphasCumprod[999]! - s.alphasCumprod[998]! * 0.001) < 1e-20);
});

test("ᾱ is the cumulative product of (1 − β), so the one-step chain is self-consistent", () => {
  for (const s of [cosineSchedule(), linearSchedule(), cosineSchedule({ T: 50, maxBeta: 0.5 })]) {
    let prod = 1;
    for (let t = 0; t < s.T; t++) {
      prod *= 1 - s.betas[t]!;
      assert.equal(s.alphasCumprod[t], prod, `${s.kind} t = ${t}`);
      assert.equal(s.alphaBarPrev(t), t === 0 ? 1 : s.alphasCumprod[t - 1]);
    }
  }
});

test("cosine schedule options: maxBeta clips every β, T changes the length", () => {
  const s = cosineSchedule({ T: 100, maxBeta: 0.2 });
  assert.equal(s.T, 100);
  assert.ok(s.betas.every((b) => b <= 0.2));
  assert.equal(s.betas[99], 0.2);
  assertDecreasingInUnitInterval(s);
});

test("linear schedule: β from 1e-4 to 0.02, last ᾱ ≈ 4e-5, ends scaled by 1000/T", () => {
  const s = linearSchedule();
  assert.ok(Math.abs(s.betas[0]! - 1e-4) < 1e-15);
  assert.ok(Math.abs(s.betas[999]! - 0.02) < 1e-15);
  assertDecreasingInUnitInterval(s);
  assert.ok(s.alphasCumprod[999]! < 1e-4 && s.alphasCumprod[999]! > 1e-5);
  const short = linearSchedule({ T: 100 });
  assert.ok(Math.abs(short.betas[0]! - 1e-3) < 1e-15);
  assert.ok(Math.abs(short.betas[99]! - 0.2) < 1e-15);
});

test("signal and noise scales are √ᾱ and √(1−ᾱ); bad timesteps throw", () => {
  const s = cosineSchedule();
  const t = 400;
  assert.equal(s.signalScale(t), Math.sqrt(s.alphasCumprod[t]!));
  assert.equal(s.noiseScale(t), Math.sqrt(1 - s.alphasCumprod[t]!));
  for (const bad of [-1, 1000, 2.5, Number.NaN]) {
    assert.throws(() => s.alphaBar(bad), /timestep .* not an integer in \[0, 999\]/);
  }
  assert.throws(() => cosineSchedule({ T: 0 }), /T must be an integer/);
  assert.throws(() => cosineSchedule({ maxBeta: 1 }), /maxBeta/);
});

test("createSchedule builds the named schedule", () => {
  assert.equal(createSchedule("cosine").kind, "cosine");
  assert.equal(createSchedule("linear", 200).T, 200);
  assert.throws(() => createSchedule("quadratic" as "cosine"), /unknown noise schedule/);
});
