// What a run means, pinned: for every way to start one — `demo`, `train` and `pack` with and
// without --preset and --config, the library, every experiment variant — the resolved
// RunOptions, the model config, the mixer and train settings and the `run` object config.json
// records are those in run-resolution.json, written before the two preset tables were merged
// into one. A saved checkpoint holding them resumes without a conflict or a change, so runs
// under runs/experiments stay current. Rewrite the file (WRITE_RUN_SNAPSHOT=1) only for a change
// of meaning that is meant: every saved run then turns stale.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, test } from "node:test";
import type { Command } from "commander";
import { DEMO_RUN } from "../../src/cli/demo.js";
import { buildProgram } from "../../src/cli/main.js";
import { runFromFlags } from "../../src/cli/train.js";
import {
  dataRoot,
  experimentBase,
  runName,
  variantRunOptions,
  variantSteps,
} from "../../src/experiment/run.js";
import { EXPERIMENTS } from "../../src/experiment/specs.js";
import type { CheckpointConfig } from "../../src/io/checkpoint.js";
import { PRESETS } from "../../src/model/config.js";
import type { RunOptions } from "../../src/train/run.js";
import {
  compareWithCheckpoint,
  requestedFields,
  requestedModel,
  runMixer,
  runRecord,
  runSettings,
} from "../../src/train/run-checks.js";
import { defaultRun } from "../../src/train/run-config.js";

const SNAPSHOT = join(import.meta.dirname, "run-resolution.json");
const tmp = mkdtempSync(join(tmpdir(), "tf-resolution-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Returns a JSON file in the temporary folder holding `value`. */
function configFile(name: string, value: unknown): string {
  const path = join(tmp, name);
  writeFileSync(path, JSON.stringify(value));
  return path;
}

// Run config files as README's "Run config files" and "The discrete-token baseline" show them,
// and older or partial ones.
const FILES = {
  readme: configFile("readme.json", {
    preset: "small",
    data: "shapes",
    seqLen: 128,
    rows: 8,
    vocabSize: 512,
    textCorpus: "moby-dick",
    imageSize: 32,
    maxImages: 20000,
    sampleEvery: 500,
    sampleCaptions: ["a large red circle"],
    model: { dim: 192, layers: 4, heads: 4, mlpHidden: 512, patchSize: 2 },
    train: { steps: 2000, maxLr: 0.001, warmupSteps: 100 },
    mixer: { textRatio: 0.25 },
    vae: { steps: 600 },
  }),
  discrete: configFile("discrete.json", {
    preset: "demo",
    data: "mnist",
    model: { imageCodes: 512 },
    vqvae: { config: { levels: 2 } },
  }),
  empty: configFile("empty.json", {}),
  presetOnly: configFile("preset.json", { preset: "demo" }),
  older: configFile("older.json", {
    preset: "tiny",
    data: "fashion-mnist",
    textCorpus: null,
    shapesDifficulty: "hard",
    model: { encoder: "unet", unetWidth: 32, timestepEmbedding: "patch", lambda: 1 },
    mixer: { textDocuments: "filler", noiseCap: null, captionFirst: 0.5 },
    vae: { steps: 50, batchSize: 16, lr: 0.002, config: { latentChannels: 4, levels: 2 } },
  }),
};

/** Returns the options a command's action receives for `argv`, without running it. */
async function flagsOf(argv: string[]): Promise<Record<string, unknown>> {
  const program = buildProgram();
  const cmd: Command = program.commands.find((c) => c.name() === argv[0])!;
  let seen: Record<string, unknown> | null = null;
  cmd.action((...args: unknown[]) => {
    seen = (args[args.length - 1] as Command).opts();
  });
  await program.parseAsync(argv, { from: "user" });
  assert.ok(seen, `no action ran for ${argv.join(" ")}`);
  return seen;
}

/** Returns the options the command of `argv` passes to runTraining (or packRun: PackOptions). */
async function commandRun(argv: string[]): Promise<RunOptions & { shardSize?: number }> {
  const o = await flagsOf(argv);
  // As the actions of src/cli/demo.ts and src/cli/train.ts build them.
  if (argv[0] === "demo") return { ...runFromFlags(DEMO_RUN, o), out: resolve(o.out as string) };
  const run = runFromFlags(defaultRun, o);
  if (argv[0] === "pack") return { ...run, shardSize: (o.shardSize as number | undefined) ?? 250 };
  return run;
}

/** Returns the RunOptions of one experiment variant's run, as `transfusion experiment` makes it. */
function experimentRun(name: string, variantId: string, seed: number): RunOptions {
  const spec = EXPERIMENTS[name]!;
  const v = spec.variants.find((x) => x.id === variantId)!;
  // The command's defaults: --root runs/experiments, --steps 2500.
  const steps = 2500;
  const base = experimentBase(spec, { steps });
  return variantRunOptions(
    dataRoot("runs/experiments", spec),
    base,
    v,
    seed,
    variantSteps(v, steps),
  );
}

/** What one way of starting a run resolves to. */
interface Resolved {
  options: Record<string, unknown>;
  model: unknown;
  mixer: unknown;
  train: unknown;
  run: unknown;
}

const CWD = process.cwd();
/** Returns `value` with the working folder written as <cwd>, so the file holds on any machine. */
const portable = (value: unknown): unknown =>
  JSON.parse(JSON.stringify(value).replaceAll(CWD, "<cwd>"));
const local = <T>(value: T): T => JSON.parse(JSON.stringify(value).replaceAll("<cwd>", CWD));

/**
 * Returns what `o` resolves to: the model with the tokenizer- and autoencoder-derived fields as a
 * run fills them in (vocabulary of vocabSize, the VQ tokenizer's 1×8 code grid, else the
 * preset's latent grid as a text-only run keeps it).
 */
function resolveRun(o: RunOptions): Resolved {
  const codes = o.model?.imageCodes ?? 0;
  const fields = requestedFields(o);
  const model = requestedModel(o, {
    vocab: o.vocabSize + codes,
    latentChannels: codes > 0 ? 1 : (fields.latentChannels as number),
    latentSize: codes > 0 ? 8 : (fields.latentSize as number),
  });
  const { onEvent: _e, shouldStop: _s, ...options } = o;
  return {
    options: portable(options) as Record<string, unknown>,
    model: portable(model),
    mixer: portable(runMixer(o, model.diffusionSteps)),
    train: portable(runSettings(o)),
    run: portable(runRecord(o)),
  };
}

/** Every way to start a run, by name. */
async function allRuns(): Promise<Record<string, RunOptions>> {
  const runs: Record<string, RunOptions> = {};
  const commands: Array<[string, string[]]> = [
    ["demo", ["demo"]],
    ["demo --preset small", ["demo", "--preset", "small"]],
    [
      "demo with flags",
      ["demo", "--steps", "10", "--vae-steps", "5", "--text-corpus", "none", "--seed", "0"],
    ],
    ["demo --config readme", ["demo", "--config", FILES.readme]],
    ["demo --config empty", ["demo", "--config", FILES.empty]],
    ["train", ["train"]],
    ...Object.keys(PRESETS).map((p): [string, string[]] => [
      `train --preset ${p}`,
      ["train", "--preset", p],
    ]),
    ...Object.entries(FILES).map(([name, path]): [string, string[]] => [
      `train --config ${name}`,
      ["train", "--config", path],
    ]),
    [
      "train --config readme with flags",
      ["train", "--config", FILES.readme, "--preset", "tiny", "--steps", "7", "--batch", "3"],
    ],
    [
      "train with every run flag",
      [
        "train",
        "--data",
        "mnist",
        "--preset",
        "base",
        "--steps",
        "11",
        "--batch",
        "4",
        "--seq-len",
        "96",
        "--lr",
        "0.002",
        "--seed",
        "3",
        "--max-images",
        "100",
        "--text-corpus",
        "sotu",
        "--vae",
        "runs/some-vae",
        "--vae-steps",
        "9",
        "--sample-every",
        "0",
        "--checkpoint-every",
        "0",
        "--no-resume",
        "--out",
        "runs/elsewhere",
      ],
    ],
    [
      "train --data docs.jsonl --shapes-difficulty easy",
      ["train", "--data", "docs.jsonl", "--shapes-difficulty", "easy"],
    ],
    ["train --data mnist", ["train", "--data", "mnist"]],
    ["train --data fashion-mnist", ["train", "--data", "fashion-mnist"]],
    ["pack", ["pack"]],
    [
      "pack --preset base --config discrete",
      ["pack", "--preset", "base", "--config", FILES.discrete],
    ],
  ];
  for (const [name, argv] of commands) runs[name] = await commandRun(argv);
  // README, "Library".
  runs["library README example"] = {
    data: "shapes",
    out: "runs/mine",
    preset: "small",
    seqLen: 128,
    rows: 8,
    vocabSize: 512,
    textCorpus: null,
    sampleEvery: 0,
    train: { steps: 500 },
  };
  for (const spec of Object.values(EXPERIMENTS)) {
    for (const v of spec.variants) {
      for (const seed of [0, 1, 2]) {
        runs[`experiment ${spec.name} ${runName(v, seed)}`] = experimentRun(spec.name, v.id, seed);
      }
    }
  }
  return runs;
}

test("every way to start a run resolves to the run it resolved to before", async () => {
  const runs = await allRuns();
  const actual = Object.fromEntries(Object.entries(runs).map(([k, o]) => [k, resolveRun(o)]));
  if (process.env.WRITE_RUN_SNAPSHOT) {
    writeFileSync(SNAPSHOT, `${JSON.stringify(actual, null, 2)}\n`);
    return;
  }
  const expected = JSON.parse(readFileSync(SNAPSHOT, "utf8")) as Record<string, Resolved>;
  assert.deepEqual(Object.keys(actual).sort(), Object.keys(expected).sort());
  for (const [name, want] of Object.entries(expected)) {
    const got = actual[name]!;
    assert.deepEqual(got.options, want.options, `${name}: RunOptions`);
    // As config.json writes them, key order included.
    for (const k of ["model", "mixer", "train", "run"] as const) {
      assert.equal(JSON.stringify(got[k]), JSON.stringify(want[k]), `${name}: ${k}`);
    }
  }
});

test("a checkpoint saved by each of those runs resumes without a conflict or a change", async () => {
  const runs = await allRuns();
  const expected = JSON.parse(readFileSync(SNAPSHOT, "utf8")) as Record<string, Resolved>;
  const saved = (want: Resolved, o: RunOptions): CheckpointConfig => {
    const raw = local({
      model: want.model,
      train: want.train,
      mixer: want.mixer,
      data: o.data,
      run: want.run,
      autoencoder: (o.model?.imageCodes ?? 0) > 0 ? "vqvae.safetensors" : "vae.safetensors",
    }) as Record<string, unknown>;
    return { path: "config.json", raw, model: raw.model as CheckpointConfig["model"] };
  };
  for (const [name, o] of Object.entries(runs)) {
    const want = expected[name]!;
    const { conflicts, changes } = compareWithCheckpoint(saved(want, o), o);
    assert.deepEqual(conflicts, [], name);
    assert.deepEqual(changes, [], name);
  }
  // The comparison sees a changed model, so an empty list above means something.
  const o = runs.demo!;
  const other = { ...o, model: { ...o.model, dim: 64 } };
  const { conflicts } = compareWithCheckpoint(saved(expected.demo!, o), other);
  assert.deepEqual(
    conflicts.map((c) => c.field),
    ["model.dim"],
  );
});
