/**
 * Model-free evaluation metrics: feature statistics, the Fréchet distance between two Gaussians
 * (the quantity behind FID), and classification accuracy. Everything is computed in float64.
 */

/** Feature rows as a flat row-major [n, d] array. */
export type Features = Float64Array | Float32Array;

export interface MeanAndCovariance {
  /** Mean feature [d]. */
  mean: Float64Array;
  /** Unbiased (divided by n − 1) covariance, row-major [d, d]. */
  cov: Float64Array;
}

function checkDims(what: string, n: number, d: number): void {
  if (!Number.isInteger(n) || n < 0) throw new Error(`${what}: n must be an integer ≥ 0, got ${n}`);
  if (!Number.isInteger(d) || d < 1) throw new Error(`${what}: d must be an integer ≥ 1, got ${d}`);
}

/**
 * Returns the mean and the unbiased covariance of n feature rows of length d (row-major).
 * Throws when the array size is not n·d or when n < 2 (the covariance needs two rows).
 */
export function meanAndCovariance(features: Features, n: number, d: number): MeanAndCovariance {
  checkDims("meanAndCovariance", n, d);
  if (features.length !== n * d) {
    throw new Error(`meanAndCovariance: ${features.length} values for n·d = ${n}·${d} = ${n * d}`);
  }
  if (n < 2) throw new Error(`meanAndCovariance: need at least 2 rows for a covariance, got ${n}`);
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) mean[j]! += features[i * d + j]!;
  }
  for (let j = 0; j < d; j++) mean[j]! /= n;
  const cov = new Float64Array(d * d);
  const centred = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) centred[j] = features[i * d + j]! - mean[j]!;
    for (let a = 0; a < d; a++) {
      const ca = centred[a]!;
      if (ca === 0) continue;
      // Upper triangle only; mirrored below.
      for (let b = a; b < d; b++) cov[a * d + b]! += ca * centred[b]!;
    }
  }
  for (let a = 0; a < d; a++) {
    for (let b = a; b < d; b++) {
      const v = cov[a * d + b]! / (n - 1);
      cov[a * d + b] = v;
      cov[b * d + a] = v;
    }
  }
  return { mean, cov };
}

export interface SymmetricEigen {
  /** Eigenvalues [d] (unsorted). */
  values: Float64Array;
  /** Eigenvectors as columns of a row-major [d, d] matrix: A = V·diag(values)·Vᵀ. */
  vectors: Float64Array;
}

/**
 * Returns the eigen-decomposition of a symmetric d×d matrix (row-major) by the cyclic Jacobi
 * method (Golub & Van Loan, "Matrix Computations", §8.5): plane rotations zero the off-diagonal
 * entries one at a time until their norm is negligible against the matrix norm. Only the upper
 * triangle's symmetric part is trusted: the input is symmetrised first. O(d³) per sweep, and a
 * few sweeps (typically < 10) suffice; fine for the feature sizes used here, slow for d ≫ 500.
 */
export function symmetricEigen(matrix: Float64Array, d: number, maxSweeps = 100): SymmetricEigen {
  if (matrix.length !== d * d) {
    throw new Error(`symmetricEigen: ${matrix.length} values for a ${d}×${d} matrix`);
  }
  const a = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) a[i * d + j] = 0.5 * (matrix[i * d + j]! + matrix[j * d + i]!);
  }
  const v = new Float64Array(d * d);
  for (let i = 0; i < d; i++) v[i * d + i] = 1;
  let total = 0;
  for (let i = 0; i < d * d; i++) total += a[i]! * a[i]!;
  const tol = Number.EPSILON * Number.EPSILON * total;
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let off = 0;
    for (let p = 0; p < d; p++) {
      for (let q = p + 1; q < d; q++) off += a[p * d + q]! * a[p * d + q]!;
    }
    if (off <= tol || off === 0) break;
    for (let p = 0; p < d - 1; p++) {
      for (let q = p + 1; q < d; q++) {
        const apq = a[p * d + q]!;
        if (apq === 0) continue;
        const app = a[p * d + p]!;
        const aqq = a[q * d + q]!;
        // Rotation angle θ with cot 2θ = (aqq − app) / (2 apq); t = tan θ, the smaller root.
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        // A ← Jᵀ A J, applied to rows/columns p and q.
        for (let k = 0; k < d; k++) {
          const akp = a[k * d + p]!;
          const akq = a[k * d + q]!;
          a[k * d + p] = c * akp - s * akq;
          a[k * d + q] = s * akp + c * akq;
        }
        for (let k = 0; k < d; k++) {
          const apk = a[p * d + k]!;
          const aqk = a[q * d + k]!;
          a[p * d + k] = c * apk - s * aqk;
          a[q * d + k] = s * apk + c * aqk;
        }
        a[p * d + q] = 0;
        a[q * d + p] = 0;
        // V ← V J.
        for (let k = 0; k < d; k++) {
          const vkp = v[k * d + p]!;
          const vkq = v[k * d + q]!;
          v[k * d + p] = c * vkp - s * vkq;
          v[k * d + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const values = new Float64Array(d);
  for (let i = 0; i < d; i++) values[i] = a[i * d + i]!;
  return { values, vectors: v };
}

/**
 * Returns the symmetric positive semi-definite square root S of a symmetric PSD d×d matrix A
 * (S·S = A), via A = V·diag(λ)·Vᵀ ⇒ S = V·diag(√max(λ, 0))·Vᵀ. Eigenvalues below zero can only
 * come from rounding (or a covariance of fewer samples than dimensions) and are clamped to 0.
 */
export function sqrtSymmetric(matrix: Float64Array, d: number): Float64Array {
  const { values, vectors: v } = symmetricEigen(matrix, d);
  const root = values.map((l) => Math.sqrt(Math.max(l, 0)));
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = i; j < d; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += v[i * d + k]! * root[k]! * v[j * d + k]!;
      out[i * d + j] = s;
      out[j * d + i] = s;
    }
  }
  return out;
}

function matmul(x: Float64Array, y: Float64Array, d: number): Float64Array {
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let k = 0; k < d; k++) {
      const xik = x[i * d + k]!;
      if (xik === 0) continue;
      for (let j = 0; j < d; j++) out[i * d + j]! += xik * y[k * d + j]!;
    }
  }
  return out;
}

/**
 * Returns the squared Fréchet (2-Wasserstein) distance between N(μ1, C1) and N(μ2, C2):
 *
 *   d² = ‖μ1 − μ2‖² + Tr(C1 + C2 − 2·(C1^{1/2} C2 C1^{1/2})^{1/2})
 *
 * the formula of FID (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge
 * to a Local Nash Equilibrium", eq. 6; Dowson & Landau 1982). Tr((C1 C2)^{1/2}) is computed as
 * Tr((C1^{1/2} C2 C1^{1/2})^{1/2}), whose argument is symmetric PSD, so both square roots are
 * symmetric ones from a Jacobi eigen-decomposition with tiny negative eigenvalues clamped to 0 —
 * no complex parts to discard as with a general sqrtm. The result is clamped at 0.
 */
export function frechetDistance(
  mu1: Float64Array,
  cov1: Float64Array,
  mu2: Float64Array,
  cov2: Float64Array,
  d: number,
): number {
  checkDims("frechetDistance", 0, d);
  if (mu1.length !== d || mu2.length !== d) {
    throw new Error(`frechetDistance: means of length ${mu1.length} and ${mu2.length}, d = ${d}`);
  }
  if (cov1.length !== d * d || cov2.length !== d * d) {
    throw new Error(
      `frechetDistance: covariances of ${cov1.length} and ${cov2.length} values, expected ${d * d}`,
    );
  }
  let meanTerm = 0;
  for (let i = 0; i < d; i++) meanTerm += (mu1[i]! - mu2[i]!) ** 2;
  let trace = 0;
  for (let i = 0; i < d; i++) trace += cov1[i * d + i]! + cov2[i * d + i]!;
  const s1 = sqrtSymmetric(cov1, d);
  const inner = matmul(matmul(s1, cov2, d), s1, d);
  const { values } = symmetricEigen(inner, d);
  let traceSqrt = 0;
  for (const l of values) traceSqrt += Math.sqrt(Math.max(l, 0));
  return Math.max(meanTerm + trace - 2 * traceSqrt, 0);
}

/**
 * Returns the Fréchet distance between Gaussians fitted to two feature sets ([nA, d] and [nB, d],
 * row-major). With Inception-v3 pool features this is FID; with any other feature extractor it
 * is the same statistic in that feature space (not comparable to published FID numbers).
 */
export function fid(
  featuresA: Features,
  nA: number,
  featuresB: Features,
  nB: number,
  d: number,
): number {
  const a = meanAndCovariance(featuresA, nA, d);
  const b = meanAndCovariance(featuresB, nB, d);
  return frechetDistance(a.mean, a.cov, b.mean, b.cov, d);
}

/**
 * Returns the fraction of positions where `predicted` equals `truth` (strict equality; 0 for
 * empty lists). Throws when the lists differ in length.
 */
export function accuracy(
  predicted: readonly (string | number)[],
  truth: readonly (string | number)[],
): number {
  if (predicted.length !== truth.length) {
    throw new Error(
      `accuracy: ${predicted.length} predictions but ${truth.length} true labels; the lists must have the same length`,
    );
  }
  if (truth.length === 0) return 0;
  let right = 0;
  for (let i = 0; i < truth.length; i++) if (predicted[i] === truth[i]) right++;
  return right / truth.length;
}
