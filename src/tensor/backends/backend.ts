/**
 * The kernel contract every backend implements.
 *
 * Kernels work on flat, row-major arrays and write into outputs the caller allocated, so a
 * native backend never allocates per call. The float array type `F` is Float32Array for the
 * host backends (js, native) and a device handle for `webgpu`, whose arrays stay in GPU
 * memory between kernels; index arrays (ids, targets), attention masks and RoPE tables are
 * always host arrays, which a device backend uploads per call. Unless a kernel says "accumulates", it
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

export interface Backend<F = Float32Array> {
  readonly name: "js" | "native" | "webgpu";
  /** Threads the backend's kernels use (1 for a device backend: the device decides). */
  readonly threads: number;
  /**
   * Whether the backend's arrays live in device memory: then `F` is the backend's handle
   * type, not a Float32Array, and host code reaches the values only through `read`.
   */
  readonly device: boolean;

  // ---- memory ---------------------------------------------------------------------------
  /** Returns a zero-filled array of n elements. */
  alloc(n: number): F;
  /** Returns an array holding a copy of `x` (a host backend may return x itself). */
  upload(x: Float32Array): F;
  /**
   * Returns a host copy of the first n elements of x once every kernel enqueued before the
   * call has finished; the only operation that waits for a device.
   */
  read(x: F, n: number): Promise<Float32Array>;

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
    A: F,
    aOffset: number,
    lda: number,
    B: F,
    bOffset: number,
    ldb: number,
    beta: number,
    C: F,
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
    A: F,
    strideA: number,
    B: F,
    strideB: number,
    beta: number,
    C: F,
    strideC: number,
    batch: number,
  ): void;

  // ---- elementwise ----------------------------------------------------------------------
  /** out[i] = f(x[i]) for i < n. */
  unary(op: UnaryOp, x: F, out: F, n: number): void;
  /**
   * gx[i] = gy[i] · f'(x[i]) for i < n; `y` is the forward output f(x) (some derivatives are
   * cheaper from it).
   */
  unaryBackward(op: UnaryOp, x: F, y: F, gy: F, gx: F, n: number): void;
  /**
   * Broadcasting binary op over an output of `shape` (rank ≤ 8). aStrides/bStrides give each
   * operand's element stride per output dimension (0 where the operand is broadcast).
   */
  binary(
    op: BinaryOp,
    a: F,
    aStrides: readonly number[],
    b: F,
    bStrides: readonly number[],
    out: F,
    shape: readonly number[],
  ): void;
  /** out[i] = alpha · x[i] + beta (affine map, used for scalar ops). */
  affine(x: F, out: F, n: number, alpha: number, beta: number): void;
  /** y[i] += alpha · x[i] (accumulates). */
  axpy(n: number, alpha: number, x: F, y: F): void;
  /** out[i] = value. */
  fill(out: F, n: number, value: number): void;
  /** out[i] = x[i]^p. */
  pow(x: F, out: F, n: number, p: number): void;

  // ---- layout ---------------------------------------------------------------------------
  /**
   * General strided copy over an index space of `shape` (rank ≤ 8):
   * dst[dstOffset + Σ idx·dstStrides] = src[srcOffset + Σ idx·srcStrides].
   * With `accumulate`, adds into dst instead of overwriting.
   */
  copyStrided(
    src: F,
    srcOffset: number,
    srcStrides: readonly number[],
    dst: F,
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
    x: F,
    shape: readonly number[],
    out: F,
    outStrides: readonly number[],
    outSize: number,
  ): void;
  /**
   * out[at] = Σ x[i]² over i < n (accumulated in double precision where the backend can,
   * stored as float32): the result stays where the arrays live, so a device backend need not
   * wait for it.
   */
  sumSquares(x: F, n: number, out: F, at: number): void;
  /** out[r·dim + c] = table[idx[r]·dim + c] for r < rows. Indices are trusted. */
  gatherRows(table: F, idx: Int32Array, out: F, rows: number, dim: number): void;
  /** gTable[idx[r]·dim + c] += gOut[r·dim + c] (accumulates). */
  scatterAddRows(gOut: F, idx: Int32Array, gTable: F, rows: number, dim: number): void;

  // ---- softmax and losses ---------------------------------------------------------------
  /** Row softmax (or log-softmax when `log`) of x [rows, cols]. */
  softmax(x: F, out: F, rows: number, cols: number, log: boolean): void;
  /**
   * Backward of softmax given its output y: gx = y ⊙ (gy − Σ gy⊙y); for log-softmax
   * gx = gy − exp(y) · Σ gy.
   */
  softmaxBackward(y: F, gy: F, gx: F, rows: number, cols: number, log: boolean): void;
  /**
   * Per-row cross-entropy of logits [rows, V] against targets: loss[r] = lse_r − x[r, t_r],
   * and lse[r] saved for backward. A target < 0 means "ignore": loss 0, lse 0.
   */
  crossEntropy(logits: F, targets: Int32Array, loss: F, lse: F, rows: number, V: number): void;
  /** gLogits[r, :] = gLoss[r] · (softmax(x_r) − onehot(t_r)); 0 for ignored rows. */
  crossEntropyBackward(
    logits: F,
    targets: Int32Array,
    lse: F,
    gLoss: F,
    gLogits: F,
    rows: number,
    V: number,
  ): void;

  // ---- normalisation --------------------------------------------------------------------
  /** RMSNorm over the last dim: out = x · rstd · w, rstd[r] = 1/sqrt(mean(x²) + eps). */
  rmsnorm(x: F, w: F, out: F, rstd: F, rows: number, dim: number, eps: number): void;
  /** Writes gx; accumulates into gw. */
  rmsnormBackward(x: F, w: F, rstd: F, gy: F, gx: F, gw: F, rows: number, dim: number): void;
  /**
   * Group normalisation of x viewed as [N, G, M] (LayerNorm is G = 1 with M = dim; GroupNorm
   * on [N, C, HW] is M = (C/G)·HW). The affine weight/bias have `channels` entries, each
   * applied to a run of `spatial` consecutive elements (LayerNorm: channels = dim,
   * spatial = 1; GroupNorm: channels = C, spatial = HW). w or b may be null.
   * Saves mean and rstd per (n, g).
   */
  groupnorm(
    x: F,
    w: F | null,
    b: F | null,
    out: F,
    mean: F,
    rstd: F,
    N: number,
    G: number,
    channels: number,
    spatial: number,
    eps: number,
  ): void;
  /** Writes gx; accumulates into gw and gb when given. */
  groupnormBackward(
    x: F,
    w: F | null,
    mean: F,
    rstd: F,
    gy: F,
    gx: F,
    gw: F | null,
    gb: F | null,
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
    x: F,
    out: F,
    cos: Float32Array,
    sin: Float32Array,
    rows: number,
    H: number,
    D: number,
    inverse: boolean,
  ): void;
  /** Scaled-dot-product attention forward; writes out and lse (see AttentionShape). */
  attention(q: F, k: F, v: F, mask: Uint8Array | null, out: F, lse: F, shape: AttentionShape): void;
  /** Attention backward from saved out and lse; writes gq, gk, gv. */
  attentionBackward(
    q: F,
    k: F,
    v: F,
    mask: Uint8Array | null,
    out: F,
    lse: F,
    gOut: F,
    gq: F,
    gk: F,
    gv: F,
    shape: AttentionShape,
  ): void;

  // ---- convolution ----------------------------------------------------------------------
  /**
   * 2D convolution, NCHW: x [N, Cin, H, W], w [Cout, Cin, kh, kw] → out [N, Cout, Ho, Wo]
   * with Ho = floor((H + 2·pad − kh) / stride) + 1. No bias (added by broadcasting).
   */
  conv2d(x: F, w: F, out: F, ...geometry: Conv2dGeometry): void;
  /** Writes gx (when not null) and gw (overwrites). */
  conv2dBackward(x: F, w: F, gy: F, gx: F | null, gw: F, ...geometry: Conv2dGeometry): void;
  /** Nearest-neighbour upsampling of x [NC, H, W] by an integer factor. */
  upsampleNearest(x: F, out: F, ...geometry: UpsampleGeometry): void;
  /** Backward: gx[nc, i, j] = Σ over the factor×factor block of gy (overwrites gx). */
  upsampleNearestBackward(gy: F, gx: F, ...geometry: UpsampleGeometry): void;

  // ---- optimiser ------------------------------------------------------------------------
  /**
   * One fused AdamW step over n parameters (decoupled weight decay):
   * m = β1·m + (1−β1)·g·gradScale; v = β2·v + (1−β2)·(g·gradScale)²;
   * p -= lr · (m/bc1 / (sqrt(v/bc2) + eps) + weightDecay · p).
   * bc1 = 1 − β1^step, bc2 = 1 − β2^step are passed in.
   */
  adamw(
    p: F,
    g: F,
    m: F,
    v: F,
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
