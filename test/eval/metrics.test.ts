// FID, its Jacobi square roots, feature statistics and accuracy.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  accuracy,
  fid,
  frechetDistance,
  meanAndCovariance,
  sqrtSymmetric,
  symmetricEigen,
} from "../../src/eval/metrics.js";
import { Rng } from "../../src/tensor/rng.js";

/** n rows of N(mu, s²I) in d dimensions. */
function gaussian(rng: Rng, n: number, d: number, mu: number[], s: number): Float64Array {
  const out = new Float64Array(n * d);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < d; j++) out[i * d + j] = mu[j]! + s * rng.normal();
  return out;
}

/** A random symmetric positive definite d×d matrix G·Gᵀ + εI. */
function randomSpd(rng: Rng, d: number): Float64Array {
  const g = new Float64Array(d * d).map(() => rng.normal());
  const a = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += g[i * d + k]! * g[j * d + k]!;
      a[i * d + j] = s + (i === j ? 1e-3 : 0);
    }
  }
  return a;
}

function matmul(x: Float64Array, y: Float64Array, d: number): Float64Array {
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++)
    for (let j = 0; j < d; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += x[i * d + k]! * y[k * d + j]!;
      out[i * d + j] = s;
    }
  return out;
}

function maxAbs(x: Float64Array, y: Float64Array): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!));
  return m;
}

test("meanAndCovariance matches a hand computation (unbiased)", () => {
  // Rows (1, 2), (3, 6), (5, 4): mean (3, 4); deviations (−2,−2), (0,2), (2,0).
  const { mean, cov } = meanAndCovariance(Float32Array.of(1, 2, 3, 6, 5, 4), 3, 2);
  assert.deepEqual([...mean], [3, 4]);
  // Σ dx² = 8, Σ dx·dy = 4, Σ dy² = 8, divided by n − 1 = 2.
  assert.deepEqual([...cov], [4, 2, 2, 4]);
  assert.throws(() => meanAndCovariance(new Float64Array(5), 3, 2), /5 values for n·d/);
  assert.throws(() => meanAndCovariance(new Float64Array(2), 1, 2), /at least 2 rows/);
});

test("Jacobi eigen-decomposition reconstructs A and its square root squares to A (1e-9)", () => {
  const rng = new Rng(3);
  for (const d of [1, 2, 5, 8, 16]) {
    const a = randomSpd(rng, d);
    const { values, vectors: v } = symmetricEigen(a, d);
    const rebuilt = new Float64Array(d * d);
    for (let i = 0; i < d; i++)
      for (let j = 0; j < d; j++) {
        let s = 0;
        for (let k = 0; k < d; k++) s += v[i * d + k]! * values[k]! * v[j * d + k]!;
        rebuilt[i * d + j] = s;
      }
    const scale = Math.max(...a.map(Math.abs));
    assert.ok(maxAbs(rebuilt, a) < 1e-9 * scale, `d=${d}: V Λ Vᵀ ≠ A`);
    const s = sqrtSymmetric(a, d);
    assert.ok(maxAbs(matmul(s, s, d), a) < 1e-9 * scale, `d=${d}: S·S ≠ A`);
  }
});

test("sqrtSymmetric clamps tiny negative eigenvalues of a singular matrix", () => {
  // Rank one: v vᵀ with v = (1, 2, 3); eigenvalues 14, 0, 0 (rounding may make them −1e-16).
  const v = [1, 2, 3];
  const a = new Float64Array(9).map((_, k) => v[Math.floor(k / 3)]! * v[k % 3]!);
  const s = sqrtSymmetric(a, 3);
  assert.ok(s.every(Number.isFinite));
  assert.ok(maxAbs(matmul(s, s, 3), a) < 1e-12 * 14);
  // √(v vᵀ) = v vᵀ / ‖v‖.
  assert.ok(
    maxAbs(
      s,
      a.map((x) => x / Math.sqrt(14)),
    ) < 1e-12,
  );
});

test("FID of a set with itself is 0 and FID is symmetric", () => {
  const rng = new Rng(5);
  const d = 6;
  const a = gaussian(rng, 500, d, [1, 0, -1, 2, 0, 0], 1.5);
  const b = gaussian(rng, 400, d, [0, 0, 0, 0, 1, 0], 0.7);
  assert.ok(Math.abs(fid(a, 500, a, 500, d)) < 1e-8, `FID(a, a) = ${fid(a, 500, a, 500, d)}`);
  const ab = fid(a, 500, b, 400, d);
  const ba = fid(b, 400, a, 500, d);
  assert.ok(ab > 1);
  assert.ok(Math.abs(ab - ba) < 1e-9 * ab, `FID(a, b) = ${ab} but FID(b, a) = ${ba}`);
});

test("frechetDistance equals the closed form for Gaussians with known statistics", () => {
  // Exact statistics: N(0, I) vs N(μ, s²I) → ‖μ‖² + d(1 − s)²; diagonal covariances → Σ(√a − √b)².
  const d = 5;
  const eye = new Float64Array(d * d).map((_, k) => (k % (d + 1) === 0 ? 1 : 0));
  const mu = Float64Array.of(1, -2, 0, 0.5, 3);
  const got = frechetDistance(
    new Float64Array(d),
    eye,
    mu,
    eye.map((x) => x * 9),
    d,
  );
  assert.ok(Math.abs(got - (1 + 4 + 0.25 + 9 + d * 4)) < 1e-10);
  const da = Float64Array.of(1, 4, 9, 0.25, 2);
  const db = Float64Array.of(4, 1, 1, 1, 8);
  const diag = (x: Float64Array) =>
    new Float64Array(d * d).map((_, k) => (k % (d + 1) === 0 ? x[k / (d + 1)]! : 0));
  let want = 0;
  for (let i = 0; i < d; i++) want += (Math.sqrt(da[i]!) - Math.sqrt(db[i]!)) ** 2;
  const zero = new Float64Array(d);
  assert.ok(Math.abs(frechetDistance(zero, diag(da), zero, diag(db), d) - want) < 1e-10);
});

test("FID of Gaussian samples is within 3% of the closed form ‖μ‖² + d(1 − s)² (n = 20000)", () => {
  const rng = new Rng(11);
  const n = 20000;
  for (const [d, s] of [
    [4, 2],
    [6, 0.5],
    [8, 1.5],
  ] as const) {
    const mu = Array.from({ length: d }, (_, j) => (j % 2 === 0 ? 0.5 : -0.25));
    const want = mu.reduce((acc, m) => acc + m * m, 0) + d * (1 - s) ** 2;
    const a = gaussian(rng, n, d, new Array(d).fill(0), 1);
    const b = gaussian(rng, n, d, mu, s);
    const got = fid(a, n, b, n, d);
    assert.ok(
      Math.abs(got - want) < 0.03 * want,
      `d=${d}, s=${s}: FID ${got.toFixed(4)} vs closed form ${want.toFixed(4)}`,
    );
  }
});

test("frechetDistance checks its dimensions", () => {
  const z = new Float64Array(4);
  assert.throws(
    () => frechetDistance(new Float64Array(3), z, new Float64Array(2), z, 2),
    /means of length 3/,
  );
  assert.throws(
    () => frechetDistance(new Float64Array(2), z, new Float64Array(2), new Float64Array(3), 2),
    /covariances/,
  );
});

test("accuracy counts matches and refuses lists of different lengths", () => {
  assert.equal(accuracy(["a", "b", "c", "d"], ["a", "x", "c", "y"]), 0.5);
  assert.equal(accuracy([1, 2, 3], [1, 2, 3]), 1);
  assert.equal(accuracy([1, "1"], ["1", 1]), 0);
  assert.equal(accuracy([], []), 0);
  assert.throws(() => accuracy([1, 2], [1]), /2 predictions but 1 true labels/);
});
