// Run config files: fields checked for their real range, named when wrong.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { applyRunFlags } from "../../src/cli/train.js";
import { DATA_RUNS, DEFAULT_RUN, defaultRun, parseRunConfig } from "../../src/train/run-config.js";

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

test("train's defaults follow the data: the flag, else the config file's field", () => {
  // Shapes (and document files) keep DEFAULT_RUN; MNIST and Fashion-MNIST take their entry.
  assert.deepEqual(defaultRun("shapes"), DEFAULT_RUN);
  assert.deepEqual(defaultRun("docs.jsonl"), { ...DEFAULT_RUN, data: "docs.jsonl" });
  assert.equal(defaultRun("toString").preset, DEFAULT_RUN.preset);
  for (const data of ["mnist", "fashion-mnist"]) {
    const r = applyRunFlags(defaultRun, { data });
    assert.equal(r.data, data);
    assert.equal(r.preset, DATA_RUNS[data]!.preset);
    assert.deepEqual(r.model, DATA_RUNS[data]!.model);
    assert.deepEqual(r.train, DATA_RUNS[data]!.train);
  }
  const dir = mkdtempSync(join(tmpdir(), "tf-data-runs-"));
  try {
    const file = join(dir, "run.json");
    writeFileSync(file, JSON.stringify({ data: "mnist", train: { steps: 77 } }));
    const fromFile = applyRunFlags(defaultRun, { config: file });
    assert.equal(fromFile.data, "mnist");
    assert.equal(fromFile.preset, DATA_RUNS.mnist!.preset);
    // The file's fields apply over the data's defaults, field by field.
    assert.equal(fromFile.train?.steps, 77);
    assert.equal(fromFile.train?.maxLr, DATA_RUNS.mnist!.train!.maxLr);
    // A --data flag decides over the file's field.
    const flag = applyRunFlags(defaultRun, { config: file, data: "shapes" });
    assert.equal(flag.data, "shapes");
    assert.equal(flag.preset, DEFAULT_RUN.preset);
    // Flags still apply over everything.
    assert.equal(applyRunFlags(defaultRun, { data: "mnist", preset: "small" }).preset, "small");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
