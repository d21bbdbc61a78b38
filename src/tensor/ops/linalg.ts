/** Matrix products through the backend's gemm, with gradients that never materialise a transpose. */

import { type ActiveBackend, backend } from "../backends/current.js";
import { alloc } from "../pool.js";
import type { FloatStore } from "../storage.js";
import { accumulateGrad, empty, record, sizeOf, type Tensor } from "../tensor.js";
import { broadcastShapes, sameShape } from "./broadcast.js";
import { add } from "./elementwise.js";

export interface MatmulOptions {
  /** Use Aᵀ: a's last two axes are [K, M]. */
  transA?: boolean;
  /** Use Bᵀ: b's last two axes are [N, K]. */
  transB?: boolean;
}

/**
 * One product C (M×N) = op(A)·op(B) per batch item, with A/B/C matrices at the given strides
 * (stride 0 = shared). With `accumulate`, adds into C; shared outputs are summed serially.
 */
function batchedProduct(
  be: ActiveBackend,
  tA: boolean,
  tB: boolean,
  M: number,
  N: number,
  K: number,
  A: FloatStore,
  sA: number,
  B: FloatStore,
  sB: number,
  C: FloatStore,
  sC: number,
  batch: number,
): void {
  const lda = tA ? M : K;
  const ldb = tB ? K : N;
  if (batch === 1) {
    be.gemm(tA, tB, M, N, K, 1, A, 0, lda, B, 0, ldb, 0, C, 0, N);
  } else if (sC === 0) {
    // The output is shared by every batch item (gradient of a broadcast operand): sum.
    for (let i = 0; i < batch; i++) {
      be.gemm(tA, tB, M, N, K, 1, A, i * sA, lda, B, i * sB, ldb, i === 0 ? 0 : 1, C, 0, N);
    }
  } else {
    be.gemmBatched(tA, tB, M, N, K, 1, A, sA, B, sB, 0, C, sC, batch);
  }
}

/**
 * Returns op(a)·op(b) over the last two axes. Leading (batch) axes must match, or one side has
 * none (it is then shared across the batch). A 2-D b with a plain a is one large gemm.
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const transA = opts.transA ?? false;
  const transB = opts.transB ?? false;
  if (a.rank < 2 || b.rank < 2) {
    throw new Error(`matmul: operands must have rank ≥ 2, got [${a.shape}] and [${b.shape}]`);
  }
  const aRows = a.shape[a.rank - 2]!;
  const aCols = a.shape[a.rank - 1]!;
  const bRows = b.shape[b.rank - 2]!;
  const bCols = b.shape[b.rank - 1]!;
  const rowsA = transA ? aCols : aRows;
  const K = transA ? aRows : aCols;
  const Kb = transB ? bCols : bRows;
  const N = transB ? bRows : bCols;
  if (K !== Kb) {
    throw new Error(
      `matmul: inner dimensions differ: [${a.shape.join(", ")}]${transA ? "ᵀ" : ""} · [${b.shape.join(", ")}]${transB ? "ᵀ" : ""}`,
    );
  }
  const aBatch = a.shape.slice(0, -2);
  const bBatch = b.shape.slice(0, -2);
  let M = rowsA;
  let batch: number;
  let outShape: number[];
  let sA = M * K;
  let sB = K * N;
  if (bBatch.length === 0 && !transA) {
    // Fold a's batch into its rows: one large gemm (the linear-layer case).
    M = rowsA * sizeOf(aBatch);
    batch = 1;
    outShape = [...aBatch, rowsA, N];
  } else {
    const outBatch = broadcastShapes(aBatch, bBatch, "matmul");
    batch = sizeOf(outBatch);
    const aShared = sizeOf(aBatch) === 1 && !sameShape(aBatch, outBatch);
    const bShared = sizeOf(bBatch) === 1 && !sameShape(bBatch, outBatch);
    if ((!aShared && !sameShape(aBatch, outBatch)) || (!bShared && !sameShape(bBatch, outBatch))) {
      throw new Error(
        `matmul: batch axes [${aBatch}] and [${bBatch}] must match or one side must have none; expand first`,
      );
    }
    if (aShared) sA = 0;
    if (bShared) sB = 0;
    outShape = [...outBatch, M, N];
  }
  const out = empty(outShape);
  const be = backend();
  batchedProduct(be, transA, transB, M, N, K, a.store, sA, b.store, sB, out.store, M * N, batch);
  return record("matmul", out, [a, b], (g) => {
    const be2 = backend();
    const sC = M * N;
    if (a.requiresGrad) {
      const ga = alloc(a.size, true);
      // op(A) grad = G·op(B)ᵀ (M×K); stored Aᵀ grad = op(B)·Gᵀ (K×M).
      if (!transA) batchedProduct(be2, false, !transB, M, K, N, g, sC, b.store, sB, ga, sA, batch);
      else batchedProduct(be2, transB, true, K, M, N, b.store, sB, g, sC, ga, sA, batch);
      accumulateGrad(a, ga, true);
    }
    if (b.requiresGrad) {
      const gb = alloc(b.size, true);
      // op(B) grad = op(A)ᵀ·G (K×N); stored Bᵀ grad = Gᵀ·op(A) (N×K).
      if (!transB) batchedProduct(be2, !transA, false, K, N, M, a.store, sA, g, sC, gb, sB, batch);
      else batchedProduct(be2, true, transA, N, K, M, g, sC, a.store, sA, gb, sB, batch);
      accumulateGrad(b, gb, true);
    }
  });
}

/** Returns x·wᵀ (+ bias): w is [out, in] as in PyTorch, so checkpoints map one to one. */
export function linear(x: Tensor, w: Tensor, bias?: Tensor): Tensor {
  if (w.rank !== 2)
    throw new Error(`linear: weight must be [out, in], got [${w.shape.join(", ")}]`);
  if (x.shape[x.rank - 1] !== w.shape[1]) {
    throw new Error(
      `linear: input [${x.shape.join(", ")}] does not end in ${w.shape[1]} (weight [${w.shape.join(", ")}])`,
    );
  }
  if (x.rank < 2) throw new Error(`linear: input must have rank ≥ 2, got [${x.shape.join(", ")}]`);
  const y = matmul(x, w, { transB: true });
  return bias ? add(y, bias) : y;
}
