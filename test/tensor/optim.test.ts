// AdamW, clipping and the learning-rate schedule against hand-computed values.
import assert from "node:assert/strict";
import { test } from "node:test";
import { AdamW, clipFactor, cosineLr } from "../../src/tensor/optim.js";
import { tensor } from "../../src/tensor/tensor.js";
import { availableBackends, withBackend } from "../helpers.js";

for (const be of availableBackends()) {
  test(`AdamW matches the closed form for two steps (${be})`, () =>
    withBackend(be, () => {
      const p = tensor([1, -2], [1, 2], true); // rank 2: decayed
      const opt = new AdamW([p], { lr: 0.1, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.5 });
      const grads = [
        [0.5, -1],
        [0.25, 2],
      ];
      const ref = [1, -2];
      const m = [0, 0];
      const v = [0, 0];
      for (let s = 1; s <= 2; s++) {
        p.grad = Float32Array.from(grads[s - 1]!);
        opt.update();
        for (let i = 0; i < 2; i++) {
          const g = grads[s - 1]![i]!;
          m[i] = 0.9 * m[i]! + 0.1 * g;
          v[i] = 0.99 * v[i]! + 0.01 * g * g;
          const mh = m[i]! / (1 - 0.9 ** s);
          const vh = v[i]! / (1 - 0.99 ** s);
          ref[i] = ref[i]! - 0.1 * (mh / (Math.sqrt(vh) + 1e-8) + 0.5 * ref[i]!);
        }
      }
      for (let i = 0; i < 2; i++)
        assert.ok(Math.abs(p.f32[i]! - ref[i]!) < 1e-5, `${p.f32[i]} vs ${ref[i]}`);
    }));
}

test("clipFactor scales the global norm to the limit", () => {
  const a = tensor([0], [1], true);
  const b = tensor([0, 0], [2], true);
  a.grad = Float32Array.from([3]);
  b.grad = Float32Array.from([4, 0]);
  const { norm, factor } = clipFactor([a, b], 1);
  assert.ok(Math.abs(norm - 5) < 1e-6);
  assert.ok(Math.abs(factor - 0.2) < 1e-6);
  assert.equal(clipFactor([a, b], 10).factor, 1);
});

test("cosineLr warms up linearly then decays to minLr", () => {
  const s = { maxLr: 1, minLr: 0.1, warmupSteps: 10, totalSteps: 110 };
  assert.ok(Math.abs(cosineLr(0, s) - 0.1) < 1e-12);
  assert.ok(Math.abs(cosineLr(9, s) - 1) < 1e-12);
  assert.ok(Math.abs(cosineLr(10, s) - 1) < 1e-12);
  assert.ok(Math.abs(cosineLr(60, s) - 0.55) < 1e-12);
  assert.ok(Math.abs(cosineLr(110, s) - 0.1) < 1e-12);
  assert.ok(Math.abs(cosineLr(500, s) - 0.1) < 1e-12);
});
