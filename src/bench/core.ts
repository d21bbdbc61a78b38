/**
 * `transfusion bench core`: the sgemm rate of the active backend, OpenBLAS called directly
 * from C for comparison, and one full training step (forward + backward + AdamW) of a
 * reference transformer, with MFU against the sgemm rate measured in the same run.
 */

import { TransformerLM } from "../nn/lm.js";
import { type BackendName, backend, useBackend } from "../tensor/backends/index.js";
import { nativeSgemmDirectGflops } from "../tensor/backends/native.js";
import { AdamW, clipFactorOf, readGradNorm } from "../tensor/optim.js";
import { withArenaAsync } from "../tensor/pool.js";
import { Rng } from "../tensor/rng.js";
import { intTensor } from "../tensor/tensor.js";
import { trainStepFlops } from "./flops.js";
import { median, peakRssMb, timeSecondsAsync } from "./stats.js";

export interface CoreBenchOptions {
  backend?: BackendName;
  /** Timed training steps (after warm-up). */
  steps?: number;
  /** Reference shape; defaults to d=256, 4 layers, T=256, B=8 (native) or a small one (js). */
  dim?: number;
  layers?: number;
  heads?: number;
  seqLen?: number;
  batch?: number;
  vocab?: number;
  /** Size of the square sgemm. */
  sgemmN?: number;
  onProgress?: (msg: string) => void;
}

export interface CoreBenchResult {
  backend: string;
  threads: number;
  sgemmN: number;
  sgemmGflops: number;
  sgemmGflopsOpenblasDirect: number | null;
  sgemmRatioToDirect: number | null;
  shape: {
    dim: number;
    layers: number;
    heads: number;
    seqLen: number;
    batch: number;
    vocab: number;
  };
  stepFlops: number;
  trainStepsPerSecond: number;
  trainTokensPerSecond: number;
  trainModelGflops: number;
  mfu: number;
  peakRssMb: number;
}

/**
 * Returns the GFLOP/s of the active backend's gemm on n×n×n (median of `reps`); on a device,
 * each product is timed until a read of its output returns.
 */
export async function measureSgemm(n: number, reps = 5): Promise<number> {
  const be = backend();
  const rng = new Rng(1);
  const a = be.upload(rng.fillNormal(new Float32Array(n * n)));
  const b = be.upload(rng.fillNormal(new Float32Array(n * n)));
  const c = be.alloc(n * n);
  const product = async () => {
    be.gemm(false, false, n, n, n, 1, a, 0, n, b, 0, n, 0, c, 0, n);
    if (be.device) await be.read(c, 1);
  };
  await product(); // warm-up
  const times: number[] = [];
  for (let i = 0; i < reps; i++) times.push(await timeSecondsAsync(product));
  return (2 * n * n * n) / median(times) / 1e9;
}

/** Runs the core bench and returns its figures. */
export async function runCoreBench(opts: CoreBenchOptions = {}): Promise<CoreBenchResult> {
  const be = opts.backend ? await useBackend(opts.backend) : backend();
  // The reference step is sized for native; js, and webgpu until it has been timed on a real
  // GPU, get a small one by default (the flags set the reference's on a GPU).
  const isJs = be.name !== "native";
  const shape = {
    dim: opts.dim ?? (isJs ? 64 : 256),
    layers: opts.layers ?? (isJs ? 2 : 4),
    heads: opts.heads ?? 4,
    seqLen: opts.seqLen ?? (isJs ? 64 : 256),
    batch: opts.batch ?? (isJs ? 4 : 8),
    vocab: opts.vocab ?? 256,
  };
  const progress = opts.onProgress ?? (() => {});
  const sgemmN = opts.sgemmN ?? (isJs ? 256 : 1024);
  progress(`sgemm ${sgemmN}³ on ${be.name}`);
  // This machine is shared and its speed drifts: measure ours and OpenBLAS-from-C alternately,
  // and keep each one's best median, so neither the ratio nor MFU rests on one unlucky window.
  const ours: number[] = [];
  const directs: number[] = [];
  for (let round = 0; round < (isJs ? 1 : 3); round++) {
    ours.push(await measureSgemm(sgemmN, isJs ? 3 : 7));
    const d = be.name === "native" ? nativeSgemmDirectGflops(sgemmN, 7) : null;
    if (d !== null) directs.push(d);
  }
  const sgemmGflops = Math.max(...ours);
  const direct = directs.length ? Math.max(...directs) : null;

  const rng = new Rng(1234);
  const model = new TransformerLM(
    {
      vocab: shape.vocab,
      dim: shape.dim,
      layers: shape.layers,
      heads: shape.heads,
      mlpHidden: 4 * shape.dim,
      mlp: "gelu",
      norm: "rms",
      ropeTheta: 10000,
    },
    rng,
  );
  const opt = new AdamW(model.parameters(), { lr: 3e-4 });
  const { batch: B, seqLen: T } = shape;
  const ids = new Int32Array(B * T);
  const targets = new Int32Array(B * T);
  for (let i = 0; i < ids.length; i++) ids[i] = rng.int(shape.vocab);
  for (let i = 0; i < ids.length; i++) targets[i] = i % T === T - 1 ? -1 : ids[i + 1]!;
  const idsT = intTensor(ids, [B, T]);
  // As in the trainer, a step's buffers are pooled and reused by the next step, and its one
  // read is the gradient norm; on a device the step ends when its last update is read back.
  const params = model.parameters();
  const step = () =>
    withArenaAsync(async () => {
      const loss = model.loss(idsT, targets);
      loss.backward();
      const { factor } = clipFactorOf(await readGradNorm(params), 1.0);
      opt.update(3e-4, factor);
      opt.zeroGrad();
      // The queue runs in order, so one value read back means the whole step has run.
      if (be.device) await be.read(params[0]!.store, 1);
    });
  const steps = opts.steps ?? (isJs ? 3 : 10);
  progress("warm-up steps");
  for (let i = 0; i < 2; i++) await step();
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    times.push(await timeSecondsAsync(step));
    progress(`step ${i + 1}/${steps}: ${(times[i]! * 1000).toFixed(0)} ms`);
  }
  const stepSeconds = median(times);
  const stepFlops = trainStepFlops(model.blockAndHeadParams(), shape.layers, T, shape.dim, B);
  const trainModelGflops = stepFlops / stepSeconds / 1e9;
  return {
    backend: be.name,
    threads: be.threads,
    sgemmN,
    sgemmGflops,
    sgemmGflopsOpenblasDirect: direct,
    sgemmRatioToDirect: direct ? sgemmGflops / direct : null,
    shape,
    stepFlops,
    trainStepsPerSecond: 1 / stepSeconds,
    trainTokensPerSecond: (B * T) / stepSeconds,
    trainModelGflops,
    mfu: trainModelGflops / sgemmGflops,
    peakRssMb: peakRssMb(),
  };
}
