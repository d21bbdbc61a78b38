// bench profile: kernels timed while work runs, counted and rated, and the backend restored.
import assert from "node:assert/strict";
import { test } from "node:test";
import { profileKernels } from "../../src/bench/profile.js";
import { backend } from "../../src/tensor/backends/current.js";
import { matmul } from "../../src/tensor/ops/linalg.js";
import { Rng } from "../../src/tensor/rng.js";
import { randn } from "../../src/tensor/tensor.js";

test("profileKernels counts each kernel's calls and time, rates matrix products, and restores the backend", async () => {
  const before = backend();
  const rng = new Rng(1);
  const a = randn([64, 96], rng);
  const b = randn([96, 32], rng);
  const p = await profileKernels(() => {
    for (let i = 0; i < 3; i++) matmul(a, b);
  });
  assert.equal(backend(), before);
  const gemm = p.kernels.find((k) => k.kernel === "gemm" || k.kernel === "gemmBatched");
  assert.ok(gemm, JSON.stringify(p.kernels.map((k) => k.kernel)));
  assert.equal(gemm.calls, 3);
  assert.ok(gemm.gflops !== null && gemm.gflops > 0);
  const outside = p.kernels.at(-1)!;
  assert.equal(outside.kernel, "outside kernels");
  const total = p.kernels.reduce((s, k) => s + k.share, 0);
  assert.ok(Math.abs(total - 1) < 1e-9, `shares sum to ${total}`);
});
