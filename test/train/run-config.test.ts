// Run config files: fields checked for their real range, named when wrong.
import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_RUN, parseRunConfig } from "../../src/train/run-config.js";

test("a run config refuses 0 where it means nothing and keeps 0 where it means off", () => {
  const base = DEFAULT_RUN;
  assert.throws(
    () => parseRunConfig({ train: { steps: 0 } }, base, "run.json"),
    /run\.json: field "train\.steps" must be a number > 0, got 0/,
  );
  assert.throws(
    () => parseRunConfig({ train: { maxLr: 0 } }, base, "run.json"),
    /"train\.maxLr" must be a number > 0/,
  );
  assert.throws(() => parseRunConfig({ train: { maxLr: -1 } }, base), /"train\.maxLr"/);
  const ok = parseRunConfig(
    { train: { warmupSteps: 0, emaDecay: 0 }, mixer: { textRatio: 0 } },
    base,
  );
  assert.equal(ok.train?.warmupSteps, 0);
  assert.equal(ok.mixer?.textRatio, 0);
  assert.throws(
    () => parseRunConfig({ vqvae: { nope: 1 } }, base, "r.json"),
    /r\.json: unknown field "vqvae\.nope"/,
  );
});

test("a discrete-token model in a run config validates with one code per position", () => {
  // The demo model's own patches are 2×2.
  const base = { ...DEFAULT_RUN, preset: "demo" };
  const c = parseRunConfig(
    { data: "mnist", model: { imageCodes: 512 }, vqvae: { config: { levels: 2 } } },
    base,
  );
  assert.equal(c.model?.imageCodes, 512);
  assert.deepEqual(c.vqvae?.config, { levels: 2 });
});
