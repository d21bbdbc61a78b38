/**
 * `transfusion bench profile`: where the time of a training step and of a sampling step goes.
 * Every kernel of the active backend is wrapped with a timer while the bench workloads run (the
 * train bench's step, the sample bench's guided image), and each kernel's share of the step is
 * listed with its calls and, for the matrix products and attention, the GFLOP/s it reached.
 * What the kernels do not account for is the tensor core's own work in TypeScript (the tape,
 * allocation, layout and batch building), reported as "outside kernels".
 */
import type { AttentionShape, Backend } from "../tensor/backends/backend.js";
import { backend, setActiveBackend } from "../tensor/backends/current.js";
import { type BackendName, setBackend } from "../tensor/backends/index.js";
import { runSampleBench } from "./sample.js";
import { runTrainBench, type TrainWorkload } from "./train.js";

export interface KernelTime {
  kernel: string;
  calls: number;
  /** Seconds inside the kernel over the profiled work. */
  seconds: number;
  /** Share of the profiled work's wall time. */
  share: number;
  /** Multiply-adds ×2 per second (matrix products and attention only), in GFLOP/s. */
  gflops: number | null;
}

export interface WorkProfile {
  /** Wall seconds of the profiled work (warm-up excluded by the benches themselves). */
  seconds: number;
  /** Kernels by time, largest first, then the time outside every kernel. */
  kernels: KernelTime[];
}

/** FLOPs of one call, for the kernels whose work is worth a rate. */
const FLOPS: Partial<Record<keyof Backend, (args: unknown[]) => number>> = {
  gemm: (a) => 2 * (a[2] as number) * (a[3] as number) * (a[4] as number),
  gemmBatched: (a) =>
    2 * (a[2] as number) * (a[3] as number) * (a[4] as number) * (a[13] as number),
  // q·kᵀ and p·v: 4·B·H·T·S·D (mask ignored: an upper bound for masked rows).
  attention: (a) => {
    const s = a[6] as AttentionShape;
    return 4 * s.B * s.H * s.T * s.S * s.D;
  },
  // The backward recomputes the scores and forms four products: about 2.5× the forward.
  attentionBackward: (a) => {
    const s = a[10] as AttentionShape;
    return 10 * s.B * s.H * s.T * s.S * s.D;
  },
};

/**
 * Returns the kernels' times while `work` runs on the active backend, each call timed with
 * performance.now() (kernels are synchronous; the native ones use their own threads inside).
 */
export async function profileKernels(work: () => void | Promise<void>): Promise<WorkProfile> {
  const base = backend();
  const stats = new Map<string, { calls: number; seconds: number; flops: number }>();
  const timed: Record<string, unknown> = { ...base };
  for (const [name, fn] of Object.entries(base)) {
    if (typeof fn !== "function") continue;
    const flops = FLOPS[name as keyof Backend];
    timed[name] = (...args: unknown[]) => {
      const t0 = performance.now();
      const out = (fn as (...a: unknown[]) => unknown).apply(base, args);
      const s = stats.get(name) ?? { calls: 0, seconds: 0, flops: 0 };
      s.calls++;
      s.seconds += (performance.now() - t0) / 1000;
      if (flops) s.flops += flops(args);
      stats.set(name, s);
      return out;
    };
  }
  const t0 = performance.now();
  setActiveBackend(timed as unknown as Backend);
  try {
    await work();
  } finally {
    setActiveBackend(base);
  }
  const seconds = (performance.now() - t0) / 1000;
  const kernels: KernelTime[] = [...stats.entries()]
    .map(([kernel, s]) => ({
      kernel,
      calls: s.calls,
      seconds: s.seconds,
      share: s.seconds / seconds,
      gflops: s.flops > 0 ? s.flops / s.seconds / 1e9 : null,
    }))
    .sort((a, b) => b.seconds - a.seconds);
  const inside = kernels.reduce((sum, k) => sum + k.seconds, 0);
  kernels.push({
    kernel: "outside kernels",
    calls: 0,
    seconds: seconds - inside,
    share: (seconds - inside) / seconds,
    gflops: null,
  });
  return { seconds, kernels };
}

export interface ProfileBenchResult {
  backend: string;
  threads: number;
  /**
   * Training steps of a train-bench workload (`bench`: d=256, 4 layers, batch 8 × 130
   * positions; `demo`: the demo step's shapes).
   */
  train: WorkProfile & { steps: number; workload: TrainWorkload };
  /** The sample bench's images and text tokens (guided image included). */
  sample: WorkProfile;
}

export interface ProfileBenchOptions {
  backend?: BackendName;
  /** Timed training steps (default 10). */
  steps?: number;
  /** The train bench's workload profiled (default `bench`). */
  workload?: TrainWorkload;
  onProgress?: (msg: string) => void;
}

/** Returns the kernel profile of the train and sample benches' workloads. */
export async function runProfileBench(o: ProfileBenchOptions = {}): Promise<ProfileBenchResult> {
  if (o.backend) setBackend(o.backend);
  const steps = o.steps ?? 10;
  const workload = o.workload ?? "bench";
  const train = await profileKernels(async () => {
    await runTrainBench({ steps, warmup: 1, sgemmN: 64, workload });
  });
  const sample = await profileKernels(async () => {
    await runSampleBench({ repeats: 1 });
  });
  const be = backend();
  return { backend: be.name, threads: be.threads, train: { ...train, steps, workload }, sample };
}
