// End-to-end proof that the core learns: a small transformer memorises a fixed batch on every
// backend, the backends agree step by step, and resident memory stays flat over 1,000 steps.
import assert from "node:assert/strict";
import { test } from "node:test";
import { TransformerLM } from "../../src/nn/lm.js";
import { AdamW, clipFactor } from "../../src/tensor/optim.js";
import { Rng } from "../../src/tensor/rng.js";
import { intTensor } from "../../src/tensor/tensor.js";
import { availableBackends, nativeMissing, withBackend } from "../helpers.js";

function setup(seed: number, dim = 32, T = 16, B = 4) {
  const rng = new Rng(seed);
  const model = new TransformerLM(
    {
      vocab: 32,
      dim,
      layers: 2,
      heads: 4,
      mlpHidden: 64,
      mlp: "swiglu",
      norm: "rms",
      ropeTheta: 10000,
    },
    rng,
  );
  const ids = new Int32Array(B * T);
  for (let i = 0; i < ids.length; i++) ids[i] = rng.int(32);
  const targets = new Int32Array(B * T);
  for (let i = 0; i < ids.length; i++) targets[i] = i % T === T - 1 ? -1 : ids[i + 1]!;
  const opt = new AdamW(model.parameters(), { lr: 3e-3, weightDecay: 0 });
  const idsT = intTensor(ids, [B, T]);
  const step = (): number => {
    const loss = model.loss(idsT, targets);
    const v = loss.item();
    loss.backward();
    opt.update(3e-3, clipFactor(model.parameters(), 1).factor);
    opt.zeroGrad();
    return v;
  };
  return { step };
}

for (const be of availableBackends()) {
  test(`a small transformer memorises a fixed batch (${be})`, () =>
    withBackend(be, () => {
      const { step } = setup(1);
      const first = step();
      let last = first;
      for (let i = 0; i < 300; i++) last = step();
      assert.ok(first > 3, `initial loss ${first} should be near ln 32 ≈ 3.47`);
      assert.ok(last < 0.05, `loss after 300 steps is ${last}, expected < 0.05`);
    }));
}

test("js and native training agree step by step", { skip: nativeMissing() ?? false }, () => {
  const run = (be: "js" | "native") =>
    withBackend(be, () => {
      const { step } = setup(3);
      return Array.from({ length: 20 }, () => step());
    });
  const a = run("js");
  const b = run("native");
  for (let i = 0; i < a.length; i++) {
    assert.ok(Math.abs(a[i]! - b[i]!) < 2e-3 * (1 + i), `step ${i}: js ${a[i]} vs native ${b[i]}`);
  }
});

for (const be of availableBackends()) {
  test(`resident memory stays flat over 1,000 training steps (${be})`, () =>
    withBackend(be, () => {
      const { step } = setup(5, 16, 8, 2);
      for (let i = 0; i < 100; i++) step();
      const before = process.memoryUsage.rss();
      for (let i = 0; i < 1000; i++) step();
      const growthMb = (process.memoryUsage.rss() - before) / 2 ** 20;
      assert.ok(growthMb < 40, `RSS grew by ${growthMb.toFixed(1)} MB over 1,000 steps`);
    }));
}
