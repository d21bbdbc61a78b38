// Experiments at toy scale: every variant × seed trained and evaluated, cached results reused on
// a rerun, an interrupted experiment finished by the next call, and the report rewriting only its
// own section of RESULTS.md.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import {
  markdownTable,
  meanSd,
  replaceSection,
  resultsTable,
  writeReport,
} from "../../src/experiment/report.js";
import {
  type ExperimentOptions,
  runExperiment,
  variantConfig,
  variantSteps,
} from "../../src/experiment/run.js";
import { EXPERIMENTS, experimentRunConfig, getExperiment } from "../../src/experiment/specs.js";

const root = mkdtempSync(join(tmpdir(), "tf-exp-"));
after(() => rmSync(root, { recursive: true, force: true }));

const options = (steps: number): ExperimentOptions => ({
  root,
  seeds: [0, 1],
  steps,
  evalCount: 4,
  sampler: "ddim",
  sampleSteps: 2,
  textBytes: 400,
  vaeSteps: 3,
  classifierSteps: 5,
  base: {
    preset: "tiny",
    model: { dim: 32, layers: 1, heads: 4, mlpHidden: 48 },
    seqLen: 96,
    rows: 2,
    vocabSize: 300,
    maxImages: 48,
  },
});

test("meanSd gives the sample standard deviation and ignores missing values", () => {
  assert.deepEqual(meanSd([1, 3]), { mean: 2, sd: Math.SQRT2 });
  assert.deepEqual(meanSd([5, null]), { mean: 5, sd: 0 });
  assert.equal(meanSd([null]), null);
});

test("markdownTable pads every column to its widest cell, as the formatter does", () => {
  assert.equal(
    markdownTable(
      ["variant", "acc ± x", "λ = 1"],
      [["bidirectional (baseline)", "38.3 ± 7.4", "1"]],
    ),
    [
      "| variant                  | acc ± x    | λ = 1 |",
      "| ------------------------ | ---------- | ----- |",
      "| bidirectional (baseline) | 38.3 ± 7.4 | 1     |",
    ].join("\n"),
  );
});

test("replaceSection replaces only between its markers and appends when they are absent", () => {
  const doc = "# Results\n\nprose before\n";
  const once = replaceSection(doc, "x", "table 1");
  assert.equal(
    once,
    "# Results\n\nprose before\n\n<!-- experiment:x -->\ntable 1\n<!-- /experiment:x -->\n",
  );
  const withTail = `${once}\nprose after\n`;
  const twice = replaceSection(withTail, "x", "table 2");
  assert.ok(twice.includes("prose before") && twice.includes("prose after"));
  assert.ok(twice.includes("table 2") && !twice.includes("table 1"));
  assert.equal(replaceSection(twice, "y", "other").match(/experiment:x -->/g)?.length, 2);
});

test("variants change only what they name; every experiment starts from the same run", () => {
  const base = experimentRunConfig(100);
  const causal = variantConfig(base, getExperiment("attention").variants[1]!, 3);
  assert.equal(causal.model?.imageAttention, "causal");
  assert.equal(causal.model?.dim, base.model?.dim);
  assert.equal(causal.train?.seed, 3);
  assert.equal(causal.train?.steps, 100);
  const noCap = variantConfig(base, getExperiment("noise-cap").variants[1]!, 0);
  assert.equal(noCap.mixer?.noiseCap, null);
  assert.equal(noCap.mixer?.textRatio, base.mixer?.textRatio);
  // The baseline has one id in every ablation, so its runs are shared.
  for (const e of Object.values(EXPERIMENTS)) {
    if (e.name !== "chameleon") assert.ok(e.variants.some((v) => v.id === "base"));
  }
  // The comparison: both families at each budget, 8× from the smallest to the largest.
  const budgets = getExperiment("chameleon").variants.map((v) => [
    variantSteps(v, 2000),
    v.model?.imageCodes ?? 0,
  ]);
  assert.deepEqual(budgets, [
    [500, 0],
    [500, 512],
    [1500, 0],
    [1500, 512],
    [4000, 0],
    [4000, 512],
  ]);
  assert.throws(() => getExperiment("nope"), /unknown experiment 'nope'.*attention/);
});

test("an experiment trains every variant and seed, reuses its results, and resumes after an interrupt", async () => {
  const spec = getExperiment("attention");
  let runEvents = 0;
  const first = await runExperiment(spec, {
    ...options(3),
    onEvent: (e) => {
      if (e.kind === "run") runEvents++;
    },
  });
  assert.equal(first.interrupted, false);
  assert.equal(first.records.length, 4);
  assert.ok(runEvents > 0);
  for (const r of first.records) {
    assert.equal(r.steps, 3);
    for (const k of [
      "generationAccuracy",
      "fid",
      "fidRealFloor",
      "captionAccuracy",
      "bitsPerByte",
    ] as const) {
      assert.ok(Number.isFinite(r.metrics[k]), `${r.variant}-s${r.seed} ${k} = ${r.metrics[k]}`);
    }
  }
  assert.deepEqual(
    first.records.map((r) => `${r.variant}-s${r.seed}`),
    ["base-s0", "base-s1", "causal-s0", "causal-s1"],
  );

  // A rerun with the same settings trains nothing and returns the stored records.
  runEvents = 0;
  const again = await runExperiment(spec, {
    ...options(3),
    onEvent: (e) => {
      if (e.kind === "run") runEvents++;
    },
  });
  assert.equal(runEvents, 0);
  assert.deepEqual(again.records, first.records);

  // More steps: stopped before the first run, then finished by the next call.
  const stopped = await runExperiment(spec, { ...options(5), shouldStop: () => true });
  assert.equal(stopped.interrupted, true);
  const resumed = await runExperiment(spec, options(5));
  assert.equal(resumed.interrupted, false);
  assert.deepEqual(
    resumed.records.map((r) => r.steps),
    [5, 5, 5, 5],
  );

  // The report keeps the prose around its section and writes the table and files.
  const docs = join(root, "docs");
  const results = join(docs, "RESULTS.md");
  mkdirSync(docs, { recursive: true });
  writeFileSync(results, "# Results\n\nWhat we found.\n");
  const files = await writeReport(resumed, docs, 2);
  await writeReport(resumed, docs, 2);
  const md = readFileSync(results, "utf8");
  assert.ok(md.startsWith("# Results\n\nWhat we found.\n"));
  assert.equal(md.match(/<!-- experiment:attention -->/g)?.length, 1);
  assert.match(md, /^\| bidirectional \(baseline\) \|/m);
  assert.match(md, /^\| causal +\|/m);
  assert.ok(resultsTable(resumed).split("\n").length === 4);
  for (const f of [files.json!, files.samples!]) assert.ok(existsSync(f), f);
  const stored = JSON.parse(readFileSync(files.json!, "utf8"));
  assert.equal(stored.records.length, 4);
});

test("the Transfusion-vs-discrete comparison trains both families at every budget and reports parity", async () => {
  const spec = getExperiment("chameleon");
  const r = await runExperiment(spec, {
    ...options(4),
    seeds: [0],
    vqvaeSteps: 3,
    base: { ...options(4).base, vqvae: { config: { baseChannels: 8, groups: 4 } } },
  });
  assert.equal(r.interrupted, false);
  assert.deepEqual(
    r.records.map((x) => [x.variant, x.steps]),
    [
      ["transfusion-x0.25", 1],
      ["chameleon-x0.25", 1],
      ["transfusion-x0.75", 3],
      ["chameleon-x0.75", 3],
      ["transfusion-x2", 8],
      ["chameleon-x2", 8],
    ],
  );
  // FLOPs grow with the budget within each family; the discrete model has no codec FLOPs.
  const flops = (id: string) => r.records.find((x) => x.variant === id)!.flops;
  assert.ok(flops("transfusion-x0.25") < flops("transfusion-x0.75"));
  assert.ok(flops("transfusion-x0.75") < flops("transfusion-x2"));
  assert.ok(flops("chameleon-x0.25") < flops("chameleon-x2"));
  for (const x of r.records) assert.ok(Number.isFinite(x.metrics.imageLoss), x.variant);

  const docs = join(root, "docs-chameleon");
  const files = await writeReport(r, docs, 2);
  const stored = JSON.parse(readFileSync(files.json!, "utf8"));
  assert.ok("flopsRatioAtParity" in stored && "byMetric" in stored && "how" in stored);
  assert.ok(stored.byMetric.fid === null || stored.byMetric.fid.ratio > 0);
  assert.ok(existsSync(files.fid!) && existsSync(files.bitsPerByte!));
  assert.match(readFileSync(join(docs, "RESULTS.md"), "utf8"), /parity FLOP ratio/);
});
