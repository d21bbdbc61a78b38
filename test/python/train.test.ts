// Training at scale: a run packed here, trained by python/train.py on one process and on two
// (torchrun, gloo on CPU) to the same losses and weights, then sampled, captioned and resumed
// here from the checkpoint PyTorch wrote.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { TransfusionPipeline } from "../../src/generate/pipeline.js";
import { readCheckpointConfig } from "../../src/io/checkpoint.js";
import { Rng } from "../../src/tensor/rng.js";
import { readSafetensorsFile, writeSafetensorsFile } from "../../src/tensor/safetensors.js";
import { Tensor } from "../../src/tensor/tensor.js";
import { TrainStepper } from "../../src/tensor/train-step.js";
import { packRun } from "../../src/train/run-pack.js";
import { DEFAULT_TRAIN, trainerOptimizer, updateEma } from "../../src/train/trainer.js";
import { shapesDocsFile, tinyRunOptions } from "../helpers.js";
import {
  PYTHON_DIR,
  relErr,
  runInterpreter,
  runPythonJson,
  skipWithoutTorch,
  tempDir,
} from "./helpers.js";

const STEPS = 4;

interface StepLine {
  step: number;
  lm: number;
  image: number;
  total: number;
  gradNorm: number;
  world: number;
}

function metrics(run: string): StepLine[] {
  return readFileSync(join(run, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as StepLine);
}

describe("python/train.py on packed batches", { skip: skipWithoutTorch() }, () => {
  const root = tempDir("train");
  const pack = join(root, "pack");
  const one = join(root, "one");
  const two = join(root, "two");
  const resumed = join(root, "resumed");
  const trainPy = join(PYTHON_DIR, "train.py");
  let ready: Promise<void> | null = null;
  // Pack once, train on one process and on two; each test reads the results.
  const setup = () =>
    (ready ??= (async () => {
      const file = await shapesDocsFile(join(root, "data"), 8);
      // Learning rate high enough that 4 steps move the weights visibly; 4 rows split 2 + 2.
      const o = tinyRunOptions(file, pack, STEPS);
      await packRun({
        ...o,
        rows: 4,
        train: { ...o.train, maxLr: 3e-3, warmupSteps: 1 },
        shardSize: 3,
      });
      runInterpreter([trainPy, "--pack", pack, "--out", one, "--quiet"], "train.py", 120_000);
      // Stopped after 2 steps, then run again: it resumes from its own checkpoint.
      for (const steps of ["2", String(STEPS)]) {
        runInterpreter(
          [trainPy, "--pack", pack, "--out", resumed, "--steps", steps, "--quiet"],
          "train.py (resumed)",
          120_000,
        );
      }
      // Debian's torch 1.13 under Python 3.11 rejects torchrun's default --redirects/--tee 0
      // (an IntFlag change); any other value works, and 2 keeps stderr on the console.
      runInterpreter(
        [
          "-m",
          "torch.distributed.run",
          "--nproc_per_node",
          "2",
          "--redirects",
          "2",
          "--tee",
          "2",
          trainPy,
          "--pack",
          pack,
          "--out",
          two,
          "--quiet",
        ],
        "torchrun train.py",
        240_000,
      );
    })());

  test("two processes give the losses and weights of one on the same global batches", async (t) => {
    await setup();
    const a = metrics(one);
    const b = metrics(two);
    assert.equal(a.length, STEPS);
    assert.equal(b.length, STEPS);
    assert.ok(b.every((m) => m.world === 2));
    let worst = 0;
    for (let i = 0; i < STEPS; i++) {
      for (const k of ["lm", "image", "total", "gradNorm"] as const) {
        const e = Math.abs(a[i]![k] - b[i]![k]) / Math.abs(a[i]![k]);
        worst = Math.max(worst, e);
        assert.ok(e <= 1e-5, `step ${i + 1} ${k}: one process ${a[i]![k]}, two ${b[i]![k]}`);
      }
    }
    const w1 = readSafetensorsFile(join(one, "checkpoint", "model.safetensors")).tensors;
    const w2 = readSafetensorsFile(join(two, "checkpoint", "model.safetensors")).tensors;
    // Weights get a looser bound than losses: the two runs' gradients differ in the last float
    // bits (summation order), and Adam's m/√v turns that into larger steps where a gradient is
    // near zero.
    let wWorst = 0;
    for (const [name, x] of Object.entries(w1)) {
      const e = relErr(x.data as Float32Array, w2[name]!.data as Float32Array);
      wWorst = Math.max(wWorst, e);
      assert.ok(e <= 1e-3, `${name}: relative difference ${e}`);
    }
    t.diagnostic(`largest relative difference: losses ${worst}, EMA weights ${wWorst}`);
  });

  test("a run stopped and resumed ends bit-identical to one that ran through", async () => {
    await setup();
    assert.deepEqual(
      metrics(resumed).map((m) => m.total),
      metrics(one).map((m) => m.total),
    );
    const a = readSafetensorsFile(join(one, "checkpoint", "train_state.safetensors"));
    const b = readSafetensorsFile(join(resumed, "checkpoint", "train_state.safetensors"));
    for (const [name, x] of Object.entries(a.tensors)) {
      assert.deepEqual(b.tensors[name]!.data, x.data, name);
    }
  });

  test("the PyTorch checkpoint is read here: trained weights, same files, drawn and captioned", async () => {
    await setup();
    const dir = join(two, "checkpoint");
    const cfg = readCheckpointConfig(dir);
    assert.equal(cfg.raw.step, STEPS);
    const state = readSafetensorsFile(join(dir, "train_state.safetensors"));
    assert.equal(state.metadata.step, String(STEPS));
    assert.equal(state.metadata.adam_step, String(STEPS));
    // The weights moved from the packed step-0 initialisation.
    const w0 = readSafetensorsFile(join(pack, "checkpoint", "model.safetensors")).tensors;
    const w = readSafetensorsFile(join(dir, "model.safetensors")).tensors;
    const moved = Object.keys(w0).filter(
      (n) => relErr(w0[n]!.data as Float32Array, w[n]!.data as Float32Array) > 1e-4,
    );
    assert.ok(moved.length > Object.keys(w0).length / 2, `only ${moved.length} tensors moved`);
    // Tokenizer and autoencoder are the pack's (their fingerprints are checked on load).
    assert.equal(
      readFileSync(join(dir, "tokenizer.json"), "utf8"),
      readFileSync(join(pack, "checkpoint", "tokenizer.json"), "utf8"),
    );
    const p = TransfusionPipeline.load(dir);
    const { images } = await p.textToImage(["a large red circle"], { steps: 5, seed: 1 });
    const img = images[0]!;
    assert.ok(img.data.every((v) => Number.isFinite(v)));
    const mean = img.data.reduce((s, v) => s + v, 0) / img.data.length;
    assert.ok(
      img.data.some((v) => Math.abs(v - mean) > 1e-3),
      "the image is blank",
    );
    const [caption] = await p.caption(images, 4);
    assert.equal(typeof caption, "string");
  });
});

test("train.py's optimiser is the TypeScript trainer's: learning rate, clipping, AdamW, EMA", {
  skip: skipWithoutTorch(),
}, () => {
  const dir = tempDir("optim");
  // Short warm-up and decay so that 6 steps cover both; a clip the gradients exceed.
  const settings = { ...DEFAULT_TRAIN, steps: 5, warmupSteps: 2, maxLr: 1e-2, clip: 0.5 };
  const rng = new Rng(3);
  // Names that exercise the decay rule: matrices decay, the embedding, gains and biases do not.
  const shapes: Record<string, number[]> = {
    "embed.weight": [5, 4],
    "layers.0.attn.q_proj.weight": [4, 4],
    "layers.0.attn_norm.weight": [4],
    "image_codec.proj.bias": [3],
  };
  const named: Array<[string, Tensor]> = Object.entries(shapes).map(([n, shape]) => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    rng.fillNormal(data);
    return [n, new Tensor(data, shape, true)];
  });
  const STEPS_RUN = 6;
  const probe: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [n, p] of named) probe[`p.${n}`] = { shape: [...p.shape], data: p.f32.slice() };
  const grads = Array.from({ length: STEPS_RUN }, () =>
    named.map(([, p]) => {
      const g = new Float32Array(p.size);
      rng.fillNormal(g);
      return g;
    }),
  );
  grads.forEach((gs, step) => {
    named.forEach(([n, p], i) => {
      probe[`g.${step}.${n}`] = { shape: [...p.shape], data: gs[i]! };
    });
  });
  writeSafetensorsFile(join(dir, "probe.safetensors"), probe, { steps: String(STEPS_RUN) });
  writeFileSync(join(dir, "settings.json"), JSON.stringify(settings));
  const py = runPythonJson<{ lr: number[]; norm: number[] }>("optim.py", [dir]);

  // The same steps through the trainer's own pieces.
  const opt = trainerOptimizer(named, settings);
  const stepper = new TrainStepper(opt, {
    schedule: {
      maxLr: settings.maxLr,
      minLr: settings.minLr,
      warmupSteps: settings.warmupSteps,
      totalSteps: settings.steps,
    },
    clip: settings.clip,
  });
  const ema = new Map(named.map(([n, p]) => [n, p.clone()]));
  for (let step = 0; step < STEPS_RUN; step++) {
    named.forEach(([, p], i) => {
      p.grad = grads[step]![i]!.slice();
    });
    const u = stepper.apply(step);
    updateEma(ema, named, settings.emaDecay, opt.step);
    assert.ok(Math.abs(u.lr - py.lr[step]!) <= 1e-12 * settings.maxLr, `step ${step} lr`);
    assert.ok(Math.abs(u.gradNorm - py.norm[step]!) <= 1e-5 * u.gradNorm, `step ${step} norm`);
  }
  const out = readSafetensorsFile(join(dir, "out.safetensors")).tensors;
  named.forEach(([n, p], i) => {
    const want: Array<[string, Float32Array]> = [
      ["param", p.f32],
      ["adam_m", opt.m[i]!.f32],
      ["adam_v", opt.v[i]!.f32],
      ["ema", ema.get(n)!.f32],
    ];
    for (const [kind, ts] of want) {
      const e = relErr(ts, out[`${kind}.${n}`]!.data as Float32Array);
      assert.ok(e <= 1e-5, `${kind}.${n}: relative difference ${e}`);
    }
  });
});
