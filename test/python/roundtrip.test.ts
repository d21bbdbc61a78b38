// Round trip through the Python safetensors reader and writer: a checkpoint the TypeScript
// trainer wrote, loaded and saved again by python/transfusion, reads back bit for bit (and the
// files come out byte for byte the same); F16, BF16, F64 and I64 cross in both directions; and
// the Python noise schedule equals the TypeScript's.
import assert from "node:assert/strict";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { cosineSchedule } from "../../src/diffusion/schedule.js";
import {
  CHECKPOINT_FORMAT,
  CHECKPOINT_VERSION,
  loadModuleTensors,
  writeJson,
} from "../../src/io/checkpoint.js";
import { makeConfig } from "../../src/model/config.js";
import { Transfusion } from "../../src/model/transfusion.js";
import { Rng } from "../../src/tensor/rng.js";
import { readSafetensorsFile, type StFile } from "../../src/tensor/safetensors.js";
import type { Tensor } from "../../src/tensor/tensor.js";
import { DEFAULT_TRAIN, Trainer } from "../../src/train/trainer.js";
import { tinyTrainBatch } from "../helpers.js";
import { runPythonJson, skipWithoutTorch, tempDir } from "./helpers.js";

const config = makeConfig("tiny", {
  vocab: 24,
  dim: 32,
  layers: 1,
  heads: 2,
  mlpHidden: 48,
  latentSize: 4,
  patchSize: 2,
  modalitySpecific: true,
});

function makeTrainer(dir: string): Trainer {
  return new Trainer({
    model: new Transfusion(config, new Rng(1)),
    settings: { ...DEFAULT_TRAIN, steps: 2, warmupSteps: 1, checkpointEvery: 0, seed: 3 },
    schedule: cosineSchedule(),
    batchFor: tinyTrainBatch,
    checkpointDir: dir,
    writeStatic: (tmp) =>
      writeJson(join(tmp, "config.json"), {
        format: CHECKPOINT_FORMAT,
        version: CHECKPOINT_VERSION,
        model: config,
      }),
  });
}

/** Returns the raw bytes of a tensor's data. */
function bytesOf(data: ArrayBufferView): Buffer {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** Asserts both files hold the same tensor names, dtypes, shapes, bits and metadata. */
function assertSameFile(a: StFile, b: StFile, what: string): void {
  assert.deepEqual(Object.keys(b.tensors).sort(), Object.keys(a.tensors).sort(), `${what}: names`);
  for (const [name, t] of Object.entries(a.tensors)) {
    const u = b.tensors[name]!;
    assert.equal(u.dtype, t.dtype, `${what}: dtype of ${name}`);
    assert.deepEqual(u.shape, t.shape, `${what}: shape of ${name}`);
    assert.ok(bytesOf(u.data).equals(bytesOf(t.data)), `${what}: bits of ${name}`);
  }
  assert.deepEqual(b.metadata, a.metadata, `${what}: metadata`);
}

interface PyOut {
  errors: Record<string, string>;
  handmade: Record<string, { dtype: string; shape: number[]; values: number[] }>;
  dtypes: Record<string, number[]>;
  alphas: Record<string, number[]>;
}

/**
 * Writes a safetensors file by hand with F16, BF16 and I64 tensors, which the TypeScript writer
 * cannot produce: little-endian bytes of known values.
 */
function writeHandmade(path: string): void {
  const f16 = new Uint16Array([0x3c00, 0xc000, 0x3800, 0x7bff]); // 1, −2, 0.5, 65504
  const bf16 = new Uint16Array([0x3f80, 0xc000, 0x3f00, 0x4049]); // 1, −2, 0.5, 3.140625
  const i64 = new BigInt64Array([-5n, 1n << 40n, 7n]);
  const header = JSON.stringify({
    __metadata__: { made: "by hand" },
    i64: { dtype: "I64", shape: [3], data_offsets: [0, 24] },
    f16: { dtype: "F16", shape: [2, 2], data_offsets: [24, 32] },
    bf16: { dtype: "BF16", shape: [4], data_offsets: [32, 40] },
  });
  const padded = header.padEnd(Math.ceil(header.length / 8) * 8, " ");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(padded.length));
  writeFileSync(
    path,
    Buffer.concat([len, Buffer.from(padded), bytesOf(i64), bytesOf(f16), bytesOf(bf16)]),
  );
}

/** Checks the TypeScript's reading of python/tests/roundtrip.py's dtypes.safetensors. */
function checkDtypes(f: StFile, py: PyOut): void {
  assert.deepEqual(f.metadata, { note: "written by Python" });
  const want: Record<string, string> = {
    f16: "F16",
    bf16: "BF16",
    f64: "F64",
    i64: "I64",
    i32: "I32",
    f32: "F32",
  };
  for (const [name, dtype] of Object.entries(want)) {
    const t = f.tensors[name]!;
    assert.equal(t.dtype, dtype, name);
    // The TypeScript reader decodes floats to float32 and integers to int32.
    assert.deepEqual([...t.data], py.dtypes[name]!.map(Math.fround), name);
  }
  assert.deepEqual(f.tensors.i64!.shape, [2, 2]);
}

describe("PyTorch mirror: safetensors round trip and schedule", {
  skip: skipWithoutTorch(),
}, () => {
  let src = "";
  let dst = "";
  let trainer: Trainer;
  let py: PyOut;
  let root = "";
  after(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });
  before(async () => {
    root = tempDir("roundtrip");
    src = join(root, "checkpoint");
    dst = join(root, "python");
    trainer = makeTrainer(src);
    await trainer.run();
    trainer.save();
    writeHandmade(join(root, "handmade.safetensors"));
    py = runPythonJson<PyOut>("roundtrip.py", [src, dst, join(root, "handmade.safetensors")]);
  });

  test("model and train state saved by Python read back bit for bit, metadata equal", () => {
    for (const name of ["model.safetensors", "train_state.safetensors"]) {
      const a = readSafetensorsFile(join(src, name));
      const b = readSafetensorsFile(join(dst, name));
      assert.ok(Object.keys(a.metadata).length > 0, `${name} has metadata`);
      assertSameFile(a, b, name);
      // The Python writer lays the file out as the TypeScript's does.
      assert.ok(readFileSync(join(dst, name)).equals(readFileSync(join(src, name))), name);
    }
    const stateDict = readSafetensorsFile(join(dst, "state_dict.safetensors"));
    assertSameFile(readSafetensorsFile(join(src, "model.safetensors")), stateDict, "state_dict");
  });

  test("the TypeScript loaders accept the files Python wrote", () => {
    const resumed = makeTrainer(dst);
    assert.equal(resumed.resume(dst), trainer.step);
    assert.equal(resumed.opt.step, trainer.opt.step);
    const raw = new Map(trainer.model.namedParameters());
    for (const [name, p] of resumed.model.namedParameters()) {
      assert.ok(bytesOf(p.f32).equals(bytesOf(raw.get(name)!.f32)), `raw weights of ${name}`);
    }
    for (let i = 0; i < trainer.opt.m.length; i++) {
      const same = (a: Tensor, b: Tensor) => bytesOf(a.f32).equals(bytesOf(b.f32));
      assert.ok(same(resumed.opt.m[i]!, trainer.opt.m[i]!), `adam_m ${i}`);
      assert.ok(same(resumed.opt.v[i]!, trainer.opt.v[i]!), `adam_v ${i}`);
    }
    const ema = new Transfusion(config, new Rng(9));
    loadModuleTensors(ema, readSafetensorsFile(join(dst, "state_dict.safetensors")), "state_dict");
    for (const [name, p] of ema.namedParameters()) {
      assert.ok(
        bytesOf(p.f32).equals(bytesOf(trainer.ema.get(name)!.f32)),
        `EMA weights of ${name}`,
      );
    }
  });

  test("F16, BF16, F64 and I64 cross in both directions", () => {
    assert.deepEqual(py.handmade.i64, {
      dtype: "torch.int64",
      shape: [3],
      values: [-5, 2 ** 40, 7],
    });
    assert.deepEqual(py.handmade.f16, {
      dtype: "torch.float16",
      shape: [2, 2],
      values: [1, -2, 0.5, 65504],
    });
    assert.deepEqual(py.handmade.bf16, {
      dtype: "torch.bfloat16",
      shape: [4],
      values: [1, -2, 0.5, 3.140625],
    });
    // Read from the file itself: F64/I64 data sits at an offset inside Node's file buffer.
    checkDtypes(readSafetensorsFile(join(dst, "dtypes.safetensors")), py);
  });

  test("load_checkpoint errors name the file and the field or tensor", () => {
    const expect: Record<string, RegExp> = {
      "bad field":
        /broken-bad-field\/config\.json: model: field "heads" must be an integer ≥ 1, got "x"/,
      "unknown field": /broken-unknown-field\/config\.json: model: unknown field "depth"/,
      version: /broken-version\/config\.json: checkpoint version 2 is not supported/,
      "missing tensor": /broken-missing-tensor\/model\.safetensors: missing tensor "head\.weight"/,
      "extra tensor": /broken-extra-tensor\/model\.safetensors: unexpected tensor "extra\.weight"/,
      "wrong shape":
        /broken-wrong-shape\/model\.safetensors: tensor "norm\.weight" has shape \[3\]/,
    };
    assert.deepEqual(Object.keys(py.errors).sort(), Object.keys(expect).sort());
    for (const [name, re] of Object.entries(expect)) assert.match(py.errors[name]!, re, name);
  });

  test("alphas_cumprod equals the TypeScript cosine schedule", (t) => {
    for (const T of [10, 1000]) {
      const ts = Array.from(cosineSchedule({ T }).alphasCumprod);
      const p = py.alphas[String(T)]!;
      assert.equal(p.length, T);
      const worst = Math.max(...ts.map((a, i) => Math.abs(a - p[i]!) / a));
      t.diagnostic(`T = ${T}: largest relative difference ${worst}`);
      assert.ok(worst <= 1e-12, `T = ${T}: relative error ${worst}`);
    }
  });
});
