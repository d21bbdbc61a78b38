/**
 * `transfusion bench core`: the sgemm rate of the active backend, OpenBLAS called directly
 * from C for comparison, and one full training step (forward + backward + AdamW) of a
 * reference transformer, with MFU against the sgemm rate measured in the same run.
 */

import { TransformerLM } from "../nn/lm.js";
import { type BackendName, backend, setBackend } from "../tensor/backends/index.js";
import { nativeSgemmDirectGflops } from "../tensor/backends/native.js";
import { AdamW, clipFactor } from "../tensor/optim.js";
import { withArena } from "../tensor/pool.js";
import { Rng } from "../tensor/rng.js";
import { intTensor } from "../tensor/tensor.js";
import { trainStepFlops } from "./flops.js";
import { median, peakRssMb, timeSeconds } from "./stats.js";

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

/** Returns the GFLOP/s of the active backend's gemm on n×n×n (median of `reps`). */
export function measureSgemm(n: number, reps = 5): number {
  const be = backend();
  const rng = new Rng(1);
  const a = rng.fillNormal(new Float32Array(n * n));
  const b = rng.fillNormal(new Float32Array(n * n));
  const c = new Float32Array(n * n);
  be.gemm(false, false, n, n, n, 1, a, 0, n, b, 0, n, 0, c, 0, n); // warm-up
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    times.push(timeSeconds(() => be.gemm(false, false, n, n, n, 1, a, 0, n, b, 0, n, 0, c, 0, n)));
  }
  return (2 * n * n * n) / median(times) / 1e9;
}

/** Runs the core bench and returns its figures. */
export function runCoreBench(opts: CoreBenchOptions = {}): CoreBenchResult {
  const be = opts.backend ? setBackend(opts.backend) : backend();
  const isJs = be.name === "js";
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
    ours.push(measureSgemm(sgemmN, isJs ? 3 : 7));
    const d = isJs ? null : nativeSgemmDirectGflops(sgemmN, 7);
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
  // As in the trainer, a step's buffers are pooled and reused by the next step.
  const step = () =>
    withArena(() => {
      const loss = model.loss(idsT, targets);
      loss.backward();
      const { factor } = clipFactor(model.parameters(), 1.0);
      opt.update(3e-4, factor);
      opt.zeroGrad();
    });
  const steps = opts.steps ?? (isJs ? 3 : 10);
  progress("warm-up steps");
  for (let i = 0; i < 2; i++) step();
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    times.push(timeSeconds(step));
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
