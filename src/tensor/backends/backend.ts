/**
 * The kernel contract every backend implements.
 *
 * Kernels work on flat, row-major typed arrays and write into outputs the caller allocated,
 * so a native backend never allocates per call. Unless a kernel says "accumulates", it
 * overwrites its outputs. Offsets and strides are counted in elements, not bytes.
 *
 * The `js` backend is the readable reference; every other backend must agree with it within
 * float32 tolerance (test/tensor/parity.test.ts). Implementations take their kernels'
 * parameter types from this interface (`Pick<Backend, …>`, `Backend["gemm"]`), so each
 * signature is written here only.
 */

import type { BinaryOp, UnaryOp } from "./ops.js";

export { BINARY_OPS, type BinaryOp, UNARY_OPS, type UnaryOp } from "./ops.js";

/**
 * Attention geometry. q and out are [B, T, H, D]; k and v are [B, S, Hkv, D] (Hkv divides H;
 * query head h reads key/value head floor(h / (H / Hkv))); lse is [B, H, T].
 * `mask`, when given, is [B, T, S] with 1 = may attend, 0 = may not. When it is null,
 * `causal` selects the causal mask aligned to the end: query i (of T) sees keys
 * j ≤ i + (S - T); otherwise every key is visible.
 * A query row with no visible key produces zeros in out, -Infinity in lse, and zero gradients.
 */
export interface AttentionShape {
  B: number;
  T: number;
  S: number;
  H: number;
  Hkv: number;
  D: number;
  scale: number;
  causal: boolean;
}

/**
 * The arguments that end both convolution kernels: the input is [N, Cin, H, W], the Cout
 * filters are kh×kw, then the stride and the zero padding (see Backend.conv2d).
 */
export type Conv2dGeometry = [
  N: number,
  Cin: number,
  H: number,
  W: number,
  Cout: number,
  kh: number,
  kw: number,
  stride: number,
  pad: number,
];

/**
 * The arguments that end both upsampling kernels: the small image is [NC, H, W], the
 * upsampled one [NC, H·factor, W·factor].
 */
export type UpsampleGeometry = [NC: number, H: number, W: number, factor: number];

export interface Backend {
  readonly name: "js" | "native";
  /** Threads the backend's kernels use. */
  readonly threads: number;

  // ---- dense linear algebra -------------------------------------------------------------
  /**
   * Row-major C = alpha · op(A) · op(B) + beta · C, with op(X) = X or Xᵀ.
   * op(A) is M×K, op(B) is K×N, C is M×N; lda/ldb/ldc are the row strides of the stored
   * matrices (A stored M×K when not transposed, K×M when transposed).
   */
  gemm(
    transA: boolean,
    transB: boolean,
    M: number,
    N: number,
    K: number,
    alpha: number,
    A: Float32Array,
    aOffset: number,
    lda: number,
    B: Float32Array,
    bOffset: number,
    ldb: number,
    beta: number,
    C: Float32Array,
    cOffset: number,
    ldc: number,
  ): void;

  /**
   * `batch` independent gemms on contiguous matrices: matrix i of A starts at i·strideA
   * (strideA may be 0 to reuse one matrix), likewise B and C. Leading dimensions are the
   * natural ones of the stored (untransposed) layout.
   */
  gemmBatched(
    transA: boolean,
    transB: boolean,
    M: number,
    N: number,
    K: number,
    alpha: number,
    A: Float32Array,
    strideA: number,
    B: Float32Array,
    strideB: number,
    beta: number,
    C: Float32Array,
    strideC: number,
    batch: number,
  ): void;

  // ---- elementwise ----------------------------------------------------------------------
  /** out[i] = f(x[i]) for i < n. */
  unary(op: UnaryOp, x: Float32Array, out: Float32Array, n: number): void;
  /**
   * gx[i] = gy[i] · f'(x[i]) for i < n; `y` is the forward output f(x) (some derivatives are
   * cheaper from it).
   */
  unaryBackward(
    op: UnaryOp,
    x: Float32Array,
    y: Float32Array,
    gy: Float32Array,
    gx: Float32Array,
    n: number,
  ): void;
  /**
   * Broadcasting binary op over an output of `shape` (rank ≤ 8). aStrides/bStrides give each
   * operand's element stride per output dimension (0 where the operand is broadcast).
   */
  binary(
    op: BinaryOp,
    a: Float32Array,
    aStrides: readonly number[],
    b: Float32Array,
    bStrides: readonly number[],
    out: Float32Array,
    shape: readonly number[],
  ): void;
  /** out[i] = alpha · x[i] + beta (affine map, used for scalar ops). */
  affine(x: Float32Array, out: Float32Array, n: number, alpha: number, beta: number): void;
  /** y[i] += alpha · x[i] (accumulates). */
  axpy(n: number, alpha: number, x: Float32Array, y: Float32Array): void;
  /** out[i] = value. */
  fill(out: Float32Array, n: number, value: number): void;
  /** out[i] = x[i]^p. */
  pow(x: Float32Array, out: Float32Array, n: number, p: number): void;

  // ---- layout ---------------------------------------------------------------------------
  /**
   * General strided copy over an index space of `shape` (rank ≤ 8):
   * dst[dstOffset + Σ idx·dstStrides] = src[srcOffset + Σ idx·srcStrides].
   * With `accumulate`, adds into dst instead of overwriting.
   */
  copyStrided(
    src: Float32Array,
    srcOffset: number,
    srcStrides: readonly number[],
    dst: Float32Array,
    dstOffset: number,
    dstStrides: readonly number[],
    shape: readonly number[],
    accumulate: boolean,
  ): void;
  /**
   * Sum reduction to a broadcast-compatible shape: out (already zeroed by the caller or not;
   * this kernel overwrites) holds Σ x over the index space of `shape`, where outStrides has
   * 0 for every reduced dimension. x is contiguous in `shape`.
   */
  reduceSum(
    x: Float32Array,
    shape: readonly number[],
    out: Float32Array,
    outStrides: readonly number[],
    outSize: number,
  ): void;
  /** Σ x[i]² over i < n, accumulated in double precision. */
  sumSquares(x: Float32Array, n: number): number;
  /** out[r·dim + c] = table[idx[r]·dim + c] for r < rows. Indices are trusted. */
  gatherRows(
    table: Float32Array,
    idx: Int32Array,
    out: Float32Array,
    rows: number,
    dim: number,
  ): void;
  /** gTable[idx[r]·dim + c] += gOut[r·dim + c] (accumulates). */
  scatterAddRows(
    gOut: Float32Array,
    idx: Int32Array,
    gTable: Float32Array,
    rows: number,
    dim: number,
  ): void;

  // ---- softmax and losses ---------------------------------------------------------------
  /** Row softmax (or log-softmax when `log`) of x [rows, cols]. */
  softmax(x: Float32Array, out: Float32Array, rows: number, cols: number, log: boolean): void;
  /**
   * Backward of softmax given its output y: gx = y ⊙ (gy − Σ gy⊙y); for log-softmax
   * gx = gy − exp(y) · Σ gy.
   */
  softmaxBackward(
    y: Float32Array,
    gy: Float32Array,
    gx: Float32Array,
    rows: number,
    cols: number,
    log: boolean,
  ): void;
  /**
   * Per-row cross-entropy of logits [rows, V] against targets: loss[r] = lse_r − x[r, t_r],
   * and lse[r] saved for backward. A target < 0 means "ignore": loss 0, lse 0.
   */
  crossEntropy(
    logits: Float32Array,
    targets: Int32Array,
    loss: Float32Array,
    lse: Float32Array,
    rows: number,
    V: number,
  ): void;
  /** gLogits[r, :] = gLoss[r] · (softmax(x_r) − onehot(t_r)); 0 for ignored rows. */
  crossEntropyBackward(
    logits: Float32Array,
    targets: Int32Array,
    lse: Float32Array,
    gLoss: Float32Array,
    gLogits: Float32Array,
    rows: number,
    V: number,
  ): void;

  // ---- normalisation --------------------------------------------------------------------
  /** RMSNorm over the last dim: out = x · rstd · w, rstd[r] = 1/sqrt(mean(x²) + eps). */
  rmsnorm(
    x: Float32Array,
    w: Float32Array,
    out: Float32Array,
    rstd: Float32Array,
    rows: number,
    dim: number,
    eps: number,
  ): void;
  /** Writes gx; accumulates into gw. */
  rmsnormBackward(
    x: Float32Array,
    w: Float32Array,
    rstd: Float32Array,
    gy: Float32Array,
    gx: Float32Array,
    gw: Float32Array,
    rows: number,
    dim: number,
  ): void;
  /**
   * Group normalisation of x viewed as [N, G, M] (LayerNorm is G = 1 with M = dim; GroupNorm
   * on [N, C, HW] is M = (C/G)·HW). The affine weight/bias have `channels` entries, each
   * applied to a run of `spatial` consecutive elements (LayerNorm: channels = dim,
   * spatial = 1; GroupNorm: channels = C, spatial = HW). w or b may be null.
   * Saves mean and rstd per (n, g).
   */
  groupnorm(
    x: Float32Array,
    w: Float32Array | null,
    b: Float32Array | null,
    out: Float32Array,
    mean: Float32Array,
    rstd: Float32Array,
    N: number,
    G: number,
    channels: number,
    spatial: number,
    eps: number,
  ): void;
  /** Writes gx; accumulates into gw and gb when given. */
  groupnormBackward(
    x: Float32Array,
    w: Float32Array | null,
    mean: Float32Array,
    rstd: Float32Array,
    gy: Float32Array,
    gx: Float32Array,
    gw: Float32Array | null,
    gb: Float32Array | null,
    N: number,
    G: number,
    channels: number,
    spatial: number,
  ): void;

  // ---- transformer kernels --------------------------------------------------------------
  /**
   * Rotary embedding on x [rows, H, D] with per-row tables cos/sin [rows, D/2]: for each
   * pair i < D/2 (the "rotate half" layout: element i pairs with element i + D/2),
   * out_i = x_i·c − x_{i+D/2}·s, out_{i+D/2} = x_{i+D/2}·c + x_i·s. With `inverse` the
   * rotation is by −angle (that is the backward). x and out may be the same array.
   */
  rope(
    x: Float32Array,
    out: Float32Array,
    cos: Float32Array,
    sin: Float32Array,
    rows: number,
    H: number,
    D: number,
    inverse: boolean,
  ): void;
  /** Scaled-dot-product attention forward; writes out and lse (see AttentionShape). */
  attention(
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    mask: Uint8Array | null,
    out: Float32Array,
    lse: Float32Array,
    shape: AttentionShape,
  ): void;
  /** Attention backward from saved out and lse; writes gq, gk, gv. */
  attentionBackward(
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    mask: Uint8Array | null,
    out: Float32Array,
    lse: Float32Array,
    gOut: Float32Array,
    gq: Float32Array,
    gk: Float32Array,
    gv: Float32Array,
    shape: AttentionShape,
  ): void;

  // ---- convolution ----------------------------------------------------------------------
  /**
   * 2D convolution, NCHW: x [N, Cin, H, W], w [Cout, Cin, kh, kw] → out [N, Cout, Ho, Wo]
   * with Ho = floor((H + 2·pad − kh) / stride) + 1. No bias (added by broadcasting).
   */
  conv2d(x: Float32Array, w: Float32Array, out: Float32Array, ...geometry: Conv2dGeometry): void;
  /** Writes gx (when not null) and gw (overwrites). */
  conv2dBackward(
    x: Float32Array,
    w: Float32Array,
    gy: Float32Array,
    gx: Float32Array | null,
    gw: Float32Array,
    ...geometry: Conv2dGeometry
  ): void;
  /** Nearest-neighbour upsampling of x [NC, H, W] by an integer factor. */
  upsampleNearest(x: Float32Array, out: Float32Array, ...geometry: UpsampleGeometry): void;
  /** Backward: gx[nc, i, j] = Σ over the factor×factor block of gy (overwrites gx). */
  upsampleNearestBackward(gy: Float32Array, gx: Float32Array, ...geometry: UpsampleGeometry): void;

  // ---- optimiser ------------------------------------------------------------------------
  /**
   * One fused AdamW step over n parameters (decoupled weight decay):
   * m = β1·m + (1−β1)·g·gradScale; v = β2·v + (1−β2)·(g·gradScale)²;
   * p -= lr · (m/bc1 / (sqrt(v/bc2) + eps) + weightDecay · p).
   * bc1 = 1 − β1^step, bc2 = 1 − β2^step are passed in.
   */
  adamw(
    p: Float32Array,
    g: Float32Array,
    m: Float32Array,
    v: Float32Array,
    n: number,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    bc1: number,
    bc2: number,
    gradScale: number,
  ): void;
}
