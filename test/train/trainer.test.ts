// The trainer: exact resume, NaN guarding, and checkpoints that survive failed writes.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { cosineSchedule } from "../../src/diffusion/schedule.js";
import { replaceFolder, resolveCheckpointDir } from "../../src/io/checkpoint.js";
import { makeConfig } from "../../src/model/config.js";
import { Transfusion } from "../../src/model/transfusion.js";
import { Rng as R } from "../../src/tensor/rng.js";
import { DEFAULT_TRAIN, Trainer, type TrainSettings } from "../../src/train/trainer.js";
import { tinyTrainBatch } from "../helpers.js";

const cfg = makeConfig("tiny", {
  vocab: 24,
  dim: 32,
  layers: 1,
  heads: 2,
  mlpHidden: 48,
  latentSize: 4,
  patchSize: 2,
});

function settings(over: Partial<TrainSettings> = {}): TrainSettings {
  return {
    ...DEFAULT_TRAIN,
    steps: 6,
    warmupSteps: 2,
    maxLr: 3e-3,
    checkpointEvery: 0,
    seed: 5,
    ...over,
  };
}

function makeTrainer(dir: string | null, s: TrainSettings, poisonFrom = Infinity) {
  const model = new Transfusion(cfg, new R(1));
  const losses: number[] = [];
  let stopAt = -1;
  const trainer: Trainer = new Trainer({
    model,
    settings: s,
    schedule: cosineSchedule(),
    batchFor: (step, rng) => tinyTrainBatch(step, rng, step >= poisonFrom),
    checkpointDir: dir,
    onStep: (m) => {
      losses.push(m.total);
    },
    shouldStop: (): boolean => stopAt >= 0 && trainer.step >= stopAt,
  });
  return { trainer, losses, stopAfter: (n: number) => (stopAt = n) };
}

test("resuming from a checkpoint replays the uninterrupted run's losses exactly", async () => {
  const a = makeTrainer(null, settings());
  await a.trainer.run();
  const dir = join(mkdtempSync(join(tmpdir(), "tf-resume-")), "ckpt");
  const b = makeTrainer(dir, settings());
  b.stopAfter(3);
  const first = await b.trainer.run();
  assert.equal(first.interrupted, true);
  assert.equal(first.steps, 3);
  const c = makeTrainer(dir, settings());
  assert.equal(c.trainer.resume(dir), 3);
  const second = await c.trainer.run();
  assert.equal(second.interrupted, false);
  assert.deepEqual([...b.losses, ...c.losses], a.losses);
});

test("non-finite steps are skipped and counted; persistent ones stop without touching the checkpoint", async () => {
  const dir = join(mkdtempSync(join(tmpdir(), "tf-nan-")), "ckpt");
  const t = makeTrainer(dir, settings({ steps: 4, nanPatience: 100 }), 2);
  await t.trainer.run();
  assert.equal(t.trainer.skippedSteps, 2);
  const before = readFileSync(join(dir, "model.safetensors"));
  const u = makeTrainer(dir, settings({ steps: 10, nanPatience: 2 }), 0);
  u.trainer.resume(dir);
  await assert.rejects(u.trainer.run(), /consecutive steps had a non-finite loss/);
  assert.deepEqual(readFileSync(join(dir, "model.safetensors")), before);
});

test("a state holding NaN is never checkpointed; the previous checkpoint stays", async () => {
  const dir = join(mkdtempSync(join(tmpdir(), "tf-nan-save-")), "ckpt");
  const t = makeTrainer(dir, settings({ steps: 2 }));
  await t.trainer.run();
  const before = readFileSync(join(dir, "model.safetensors"));
  t.trainer.ema.get("norm.weight")!.f32[1] = Number.NaN;
  assert.throws(
    () => t.trainer.save(),
    /refusing to save .*ckpt\/model\.safetensors: tensor "norm\.weight" holds NaN at index 1/,
  );
  t.trainer.ema.get("norm.weight")!.f32[1] = 1;
  t.trainer.opt.v[0]!.f32[0] = Number.POSITIVE_INFINITY;
  assert.throws(
    () => t.trainer.save(),
    /train_state\.safetensors: tensor "adam_v\.[^"]+" holds Infinity/,
  );
  assert.deepEqual(readFileSync(join(dir, "model.safetensors")), before);
  assert.equal(existsSync(`${dir}.tmp`), false);
});

test("a failed checkpoint write leaves the previous checkpoint intact", () => {
  const dir = join(mkdtempSync(join(tmpdir(), "tf-ckpt-")), "ckpt");
  replaceFolder(dir, (tmp) => {
    writeFileSync(join(tmp, "config.json"), '{"v":1}');
    writeFileSync(join(tmp, "model.safetensors"), "x");
  });
  assert.throws(
    () =>
      replaceFolder(dir, (tmp) => {
        writeFileSync(join(tmp, "config.json"), '{"v":2}');
        throw new Error("disk full");
      }),
    /cannot write checkpoint .*disk full/,
  );
  assert.equal(readFileSync(join(dir, "config.json"), "utf8"), '{"v":1}');
  assert.equal(existsSync(`${dir}.tmp`), false);
  assert.equal(resolveCheckpointDir(dir), dir);
});

test("a Transfusion training run's resident memory stays flat after warm-up", async () => {
  const t = makeTrainer(null, settings({ steps: 400 }));
  for (let i = 0; i < 50; i++) await t.trainer.trainStep();
  const before = process.memoryUsage.rss();
  for (let i = 0; i < 350; i++) await t.trainer.trainStep();
  const growthMb = (process.memoryUsage.rss() - before) / 2 ** 20;
  assert.ok(growthMb < 40, `RSS grew by ${growthMb.toFixed(1)} MB over 350 steps`);
});
