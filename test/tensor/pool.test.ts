// Buffer pooling: training inside arenas gives bit-identical losses to training without,
// with returned buffers poisoned by NaN so any use after release would show.
import assert from "node:assert/strict";
import { test } from "node:test";
import { TransformerLM } from "../../src/nn/lm.js";
import { AdamW } from "../../src/tensor/optim.js";
import { allocHost, pooledBytes, setPoolDebug, withArena } from "../../src/tensor/pool.js";
import { Rng } from "../../src/tensor/rng.js";
import { intTensor } from "../../src/tensor/tensor.js";
import { availableBackends, withBackend } from "../helpers.js";

function losses(useArena: boolean): number[] {
  const rng = new Rng(2);
  const model = new TransformerLM(
    {
      vocab: 16,
      dim: 16,
      layers: 2,
      heads: 2,
      mlpHidden: 32,
      mlp: "swiglu",
      norm: "rms",
      ropeTheta: 10000,
    },
    rng,
  );
  const ids = Int32Array.from({ length: 24 }, () => rng.int(16));
  const targets = Int32Array.from(ids, (_, i) => (i % 12 === 11 ? -1 : ids[i + 1]!));
  const opt = new AdamW(model.parameters(), { lr: 1e-2 });
  const out: number[] = [];
  for (let s = 0; s < 8; s++) {
    const step = () => {
      const loss = model.loss(intTensor(ids, [2, 12]), targets);
      out.push(loss.item());
      loss.backward();
      opt.update();
      opt.zeroGrad();
    };
    if (useArena) withArena(step);
    else step();
  }
  return out;
}

for (const be of availableBackends()) {
  test(`training inside arenas equals training without, with released buffers poisoned (${be})`, () =>
    withBackend(be, () => {
      setPoolDebug(true);
      try {
        const plain = losses(false);
        const pooled = losses(true);
        assert.ok(pooled.every(Number.isFinite), `non-finite loss: ${pooled}`);
        assert.deepEqual(pooled, plain);
      } finally {
        setPoolDebug(false);
      }
    }));
}

test("an arena hands buffers back and reuses them, zeroed", () => {
  let first: Float32Array | null = null;
  withArena(() => {
    first = allocHost(1234);
    first.fill(7);
  });
  assert.ok(pooledBytes() >= 1234 * 4);
  withArena(() => {
    const again = allocHost(1234);
    assert.equal(again, first);
    assert.ok(again.every((v) => v === 0));
  });
});
