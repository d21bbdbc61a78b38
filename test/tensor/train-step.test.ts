// The shared training step: it applies exactly the schedule's rate with the clipped gradient,
// clears gradients every step, skips non-finite steps only when asked, and reports an ETA.
import assert from "node:assert/strict";
import { test } from "node:test";
import { AdamW, clipFactor, cosineLr } from "../../src/tensor/optim.js";
import { tensor } from "../../src/tensor/tensor.js";
import { TrainStepper } from "../../src/tensor/train-step.js";

const schedule = { maxLr: 0.1, minLr: 0.01, warmupSteps: 2, totalSteps: 10 };

test("apply equals AdamW.update at the cosine rate with the clip factor, then clears gradients", () => {
  const grads = [3, -4];
  const p = tensor([1, 2], [1, 2], true);
  const stepper = new TrainStepper(new AdamW([p]), { schedule, clip: 1 });
  const q = tensor([1, 2], [1, 2], true);
  const ref = new AdamW([q]);
  for (let step = 0; step < 4; step++) {
    p.grad = Float32Array.from(grads);
    q.grad = Float32Array.from(grads);
    const { factor, norm } = clipFactor([q], 1);
    ref.update(cosineLr(step, schedule), factor);
    const u = stepper.apply(step);
    assert.deepEqual(u, { lr: cosineLr(step, schedule), gradNorm: norm, applied: true });
    assert.equal(p.grad, null);
    assert.deepEqual(p.f32, q.f32);
  }
});

test("a non-finite loss or gradient is skipped only with skipNonFinite", () => {
  for (const skipNonFinite of [true, false]) {
    const p = tensor([1, 2], [1, 2], true);
    const stepper = new TrainStepper(new AdamW([p]), { schedule, clip: 1, skipNonFinite });
    p.grad = Float32Array.from([1, 1]);
    assert.equal(stepper.apply(0, Number.NaN).applied, !skipNonFinite);
    assert.equal(stepper.opt.step, skipNonFinite ? 0 : 1);
    assert.equal(p.grad, null);
    p.grad = Float32Array.from([Number.POSITIVE_INFINITY, 1]);
    assert.equal(stepper.apply(1, 0.5).applied, !skipNonFinite);
  }
});

test("progress reports elapsed seconds and a proportional ETA", () => {
  const stepper = new TrainStepper(new AdamW([tensor([1], [1], true)]), { schedule, clip: 0 });
  assert.deepEqual(stepper.progress(0, 10), { seconds: 0, etaSeconds: 0 });
  stepper.begin();
  const t = performance.now();
  while (performance.now() - t < 5);
  const { seconds, etaSeconds } = stepper.progress(1, 4);
  assert.ok(seconds >= 0.004, `${seconds}`);
  assert.ok(Math.abs(etaSeconds - 3 * seconds) < 1e-3, `${etaSeconds} vs ${3 * seconds}`);
  assert.ok(stepper.stepSeconds() >= seconds);
  assert.equal(stepper.progress(4, 4).etaSeconds, 0);
});
