/**
 * Kernel benchmark of the native backend: `npx tsx scripts/bench-kernels.ts [--quick]`.
 *
 * Prints GFLOP/s of our gemm (single-threaded OpenBLAS per pool thread) next to the same
 * sgemm run by OpenBLAS's own threads from C (`sgemmDirectGflops`, the roofline), and
 * timings of the fused attention kernels and a few others at training shapes. The machine
 * may be shared and noisy: every figure is the median of several interleaved rounds, and
 * the ratio is taken within each round before its median is taken.
 */

import type { AttentionShape, Backend } from "../src/tensor/backends/backend.js";
import { loadNativeBackend, nativeSgemmDirectGflops } from "../src/tensor/backends/native.js";
import { Rng } from "../src/tensor/rng.js";

const quick = process.argv.includes("--quick");
const ROUNDS = quick ? 3 : 7;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function rand(n: number, seed: number): Float32Array {
  return new Rng(seed).fillUniform(new Float32Array(n), -1, 1);
}

/** Returns the mean milliseconds per call of `fn` over `iters` calls (after one warm-up). */
function timeMs(fn: () => void, iters: number): number {
  fn();
  const t0 = performance.now();
  for (let i = 0; i < iters; i++) fn();
  return (performance.now() - t0) / iters;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function benchGemm(be: Backend, n: number, iters: number): Promise<void> {
  const A = rand(n * n, 1);
  const B = rand(n * n, 2);
  const C = new Float32Array(n * n);
  const flops = 2 * n * n * n;
  const ours: number[] = [];
  const direct: number[] = [];
  const ratio: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const ms = timeMs(() => be.gemm(false, false, n, n, n, 1, A, 0, n, B, 0, n, 0, C, 0, n), iters);
    const o = flops / ms / 1e6;
    const d = nativeSgemmDirectGflops(n, iters)!;
    // OpenBLAS's threads keep spinning for a while after its calls; let them go to sleep
    // before our pool runs again, or the next round measures the two pools fighting.
    await sleep(300);
    ours.push(o);
    direct.push(d);
    ratio.push(o / d);
  }
  console.log(
    `gemm ${n}³: ours ${median(ours).toFixed(1)} GFLOP/s, OpenBLAS-threaded ${median(direct).toFixed(1)} GFLOP/s, ` +
      `ratio ${median(ratio).toFixed(2)} (rounds: ${ratio.map((x) => x.toFixed(2)).join(" ")})`,
  );
}

function benchGemmShape(
  be: Backend,
  M: number,
  N: number,
  K: number,
  tA: boolean,
  tB: boolean,
): void {
  const A = rand(M * K, 3);
  const B = rand(K * N, 4);
  const C = new Float32Array(M * N);
  const lda = tA ? M : K;
  const ldb = tB ? K : N;
  const iters = Math.max(3, Math.round(2e9 / (2 * M * N * K)));
  const g: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const ms = timeMs(() => be.gemm(tA, tB, M, N, K, 1, A, 0, lda, B, 0, ldb, 0, C, 0, N), iters);
    g.push((2 * M * N * K) / ms / 1e6);
  }
  console.log(`gemm ${M}×${N}×${K} tA=${tA} tB=${tB}: ${median(g).toFixed(1)} GFLOP/s`);
}

function benchAttention(be: Backend, s: AttentionShape, label: string): void {
  const qn = s.B * s.T * s.H * s.D;
  const kn = s.B * s.S * s.Hkv * s.D;
  const q = rand(qn, 5);
  const k = rand(kn, 6);
  const v = rand(kn, 7);
  const out = new Float32Array(qn);
  const lse = new Float32Array(s.B * s.H * s.T);
  const gOut = rand(qn, 8);
  const gq = new Float32Array(qn);
  const gk = new Float32Array(kn);
  const gv = new Float32Array(kn);
  const fwd: number[] = [];
  const bwd: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    fwd.push(timeMs(() => be.attention(q, k, v, null, out, lse, s), 10));
    bwd.push(timeMs(() => be.attentionBackward(q, k, v, null, out, lse, gOut, gq, gk, gv, s), 10));
  }
  // Useful flops with causality: QKᵀ and PV over the visible half (≈ T·S/2 pairs).
  const pairs = s.causal ? (s.T * (s.T + 1)) / 2 + s.T * (s.S - s.T) : s.T * s.S;
  const fwdFlops = 4 * s.B * s.H * pairs * s.D;
  console.log(
    `attention ${label}: forward ${median(fwd).toFixed(2)} ms (${(fwdFlops / median(fwd) / 1e6).toFixed(1)} useful GFLOP/s), ` +
      `backward ${median(bwd).toFixed(2)} ms (${((2.5 * fwdFlops) / median(bwd) / 1e6).toFixed(1)} useful GFLOP/s)`,
  );
}

function benchSimple(label: string, fn: () => void, iters: number): void {
  const t: number[] = [];
  for (let r = 0; r < ROUNDS; r++) t.push(timeMs(fn, iters));
  console.log(`${label}: ${(median(t) * 1000).toFixed(1)} µs`);
}

async function main(): Promise<void> {
  const { backend: be, error } = loadNativeBackend();
  if (!be) {
    console.error(`native backend unavailable: ${error}`);
    process.exit(1);
  }
  console.log(`native backend, ${be.threads} threads; medians of ${ROUNDS} rounds`);
  await benchGemm(be, 1024, quick ? 5 : 10);
  if (!quick) {
    benchGemmShape(be, 2048, 768, 256, false, false);
    benchGemmShape(be, 2048, 256, 768, false, true);
    benchGemmShape(be, 768, 256, 2048, true, false);
    benchGemmShape(be, 256, 256, 64, false, false);
  }
  benchAttention(
    be,
    { B: 8, T: 256, S: 256, H: 4, Hkv: 4, D: 64, scale: 0.125, causal: true },
    "B=8 T=256 H=4 D=64 causal",
  );
  if (!quick) {
    benchAttention(
      be,
      { B: 1, T: 256, S: 256, H: 4, Hkv: 1, D: 64, scale: 0.125, causal: true },
      "B=1 T=256 H=4 Hkv=1 D=64 causal",
    );
    const rows = 2048;
    const V = 4096;
    const x = rand(rows * V, 9);
    const y = new Float32Array(rows * V);
    benchSimple(`softmax ${rows}×${V}`, () => be.softmax(x, y, rows, V, false), 5);
    const n = 2048 * 256;
    const a = rand(n, 10);
    const o = new Float32Array(n);
    benchSimple(`unary gelu n=${n}`, () => be.unary("gelu", a, o, n), 20);
    benchSimple(
      `binary add [2048,256]+[256]`,
      () => be.binary("add", a, [256, 1], a, [0, 1], o, [2048, 256]),
      20,
    );
    const w = rand(256, 11);
    const rstd = new Float32Array(2048);
    benchSimple(`rmsnorm 2048×256`, () => be.rmsnorm(a, w, o, rstd, 2048, 256, 1e-5), 20);
    benchSimple(`unary exp n=16 (call overhead)`, () => be.unary("exp", a, o, 16), 2000);
  }
}

await main();
