/// <reference types="@webgpu/types" />
/**
 * The `webgpu` backend: the kernel contract (../backend.ts) on arrays that stay in GPU memory
 * (GpuArray), each method enqueuing the WGSL kernels of ./kernels/ on a WebGpuRuntime. Only
 * `read` waits for the device.
 *
 * What the adapter adds to the kernels:
 * - host arrays of the contract (gatherRows/scatterAddRows indices, cross-entropy targets, the
 *   attention mask, the RoPE tables) are uploaded to temporary buffers for the call and
 *   released once the work using them is submitted;
 * - aliasing: the contract lets an output also be passed as an input of the same call
 *   (affine(x, x, …), axpy(n, a, x, x), binary(op, a, …, b, …, a, …)), but WebGPU forbids
 *   binding a buffer a dispatch writes as any other operand of it. Such an input is bound as a
 *   scratch copy taken just before the call (a buffer copy recorded in order with the
 *   kernels), so every input is read as it was when the call was made (what js computes for
 *   the in-place elementwise calls the core makes). rope alone runs in place (its kernel has
 *   an in-place variant). Read-only operands may share a buffer (unaryBackward(op, d, d, …)),
 *   and the outputs that the kernels read and write (axpy's y, accumulating copyStrided,
 *   scatterAddRows, gw/gb, AdamW's p/m/v) are one binding each. Two outputs of one call must
 *   be different arrays.
 */

import type { DeviceArray } from "../../storage.js";
import type { Backend } from "../backend.js";
import { type HostArray, WebGpuRuntime } from "./device.js";
import * as optimiser from "./kernels/adamw.js";
import * as transformer from "./kernels/attention.js";
import * as conv from "./kernels/conv.js";
import * as elementwise from "./kernels/elementwise.js";
import * as linalg from "./kernels/gemm.js";
import * as layout from "./kernels/layout.js";
import * as norm from "./kernels/norm.js";
import * as softmax from "./kernels/softmax.js";

/** A webgpu array: `length` float32 values in a storage buffer (at least 4 bytes long). */
export class GpuArray implements DeviceArray {
  readonly device = "webgpu";
  constructor(
    readonly buffer: GPUBuffer,
    readonly length: number,
  ) {}
}

/** The webgpu backend with the runtime it enqueues on (for flush, device events, destroy). */
export type WebGpuBackend = Backend<GpuArray> & { readonly runtime: WebGpuRuntime };

/**
 * The buffers of one contract call: `input` binds an input (a scratch copy when one of the
 * call's outputs is the same buffer, see the header), `host` uploads a host array, `done`
 * releases the temporaries once the call's kernels are enqueued.
 */
class Operands {
  private readonly outputs: GPUBuffer[] = [];
  private readonly copies = new Map<GPUBuffer, GPUBuffer>();
  private readonly temporaries: GPUBuffer[] = [];

  /** `outputs`: the arrays the call writes (null for an absent optional output). */
  constructor(
    private readonly rt: WebGpuRuntime,
    what: string,
    outputs: readonly (GpuArray | null)[],
  ) {
    for (const o of outputs) {
      if (!o) continue;
      if (this.outputs.includes(o.buffer)) {
        throw new Error(`webgpu ${what}: two outputs are the same array`);
      }
      this.outputs.push(o.buffer);
    }
  }

  /** Returns the buffer to bind for the read-only operand x. */
  input(x: GpuArray): GPUBuffer {
    const b = x.buffer;
    if (!this.outputs.includes(b)) return b;
    let copy = this.copies.get(b);
    if (!copy) {
      copy = this.rt.alloc(b.size, 1);
      this.rt.copy(b, 0, copy, 0, b.size);
      this.copies.set(b, copy);
      this.temporaries.push(copy);
    }
    return copy;
  }

  /** `input` for an optional operand. */
  optional(x: GpuArray | null): GPUBuffer | null {
    return x ? this.input(x) : null;
  }

  /** Returns a temporary buffer holding the host array a (i32 indices, mask bytes, f32 tables). */
  host(a: HostArray): GPUBuffer {
    const b = this.rt.upload(a);
    this.temporaries.push(b);
    return b;
  }

  /** Releases the temporaries (destroyed after the work using them is submitted). */
  done(): void {
    for (const b of this.temporaries) this.rt.release(b);
  }
}

/** Returns the webgpu backend on the runtime `rt`. */
export function webGpuBackend(rt: WebGpuRuntime): WebGpuBackend {
  /**
   * Runs one contract call named `what` that writes `outputs`, its operands bound through
   * `run`'s Operands, whose temporaries are released afterwards (also when a kernel throws).
   */
  const call = (
    what: string,
    outputs: readonly (GpuArray | null)[],
    run: (o: Operands) => void,
  ): void => {
    const o = new Operands(rt, what, outputs);
    try {
      run(o);
    } finally {
      o.done();
    }
  };
  return {
    name: "webgpu",
    threads: 1,
    device: true,
    runtime: rt,

    alloc: (n) => new GpuArray(rt.alloc(n), n),
    upload: (x) => new GpuArray(rt.upload(x), x.length),
    read: async (x, n) => {
      if (n > x.length) throw new RangeError(`webgpu read: ${n} values of an array of ${x.length}`);
      return rt.read(x.buffer, n);
    },

    gemm: (tA, tB, M, N, K, alpha, A, aOffset, lda, B, bOffset, ldb, beta, C, cOffset, ldc) =>
      call("gemm", [C], (o) => {
        const [a, b, c] = [o.input(A), o.input(B), C.buffer];
        linalg.gemm(
          rt,
          tA,
          tB,
          M,
          N,
          K,
          alpha,
          a,
          aOffset,
          lda,
          b,
          bOffset,
          ldb,
          beta,
          c,
          cOffset,
          ldc,
        );
      }),
    gemmBatched: (tA, tB, M, N, K, alpha, A, strideA, B, strideB, beta, C, strideC, batch) =>
      call("gemmBatched", [C], (o) => {
        const [a, b, c] = [o.input(A), o.input(B), C.buffer];
        linalg.gemmBatched(
          rt,
          tA,
          tB,
          M,
          N,
          K,
          alpha,
          a,
          strideA,
          b,
          strideB,
          beta,
          c,
          strideC,
          batch,
        );
      }),

    unary: (op, x, out, n) =>
      call("unary", [out], (o) => elementwise.unary(rt, op, o.input(x), out.buffer, n)),
    unaryBackward: (op, x, y, gy, gx, n) =>
      call("unaryBackward", [gx], (o) => {
        elementwise.unaryBackward(rt, op, o.input(x), o.input(y), o.input(gy), gx.buffer, n);
      }),
    binary: (op, a, aStrides, b, bStrides, out, shape) =>
      call("binary", [out], (o) => {
        elementwise.binary(rt, op, o.input(a), aStrides, o.input(b), bStrides, out.buffer, shape);
      }),
    affine: (x, out, n, alpha, beta) =>
      call("affine", [out], (o) => elementwise.affine(rt, o.input(x), out.buffer, n, alpha, beta)),
    axpy: (n, alpha, x, y) =>
      call("axpy", [y], (o) => elementwise.axpy(rt, n, alpha, o.input(x), y.buffer)),
    fill: (out, n, value) => elementwise.fill(rt, out.buffer, n, value),
    pow: (x, out, n, p) =>
      call("pow", [out], (o) => elementwise.pow(rt, o.input(x), out.buffer, n, p)),

    copyStrided: (src, srcOffset, srcStrides, dst, dstOffset, dstStrides, shape, accumulate) =>
      call("copyStrided", [dst], (o) => {
        const [s, d] = [o.input(src), dst.buffer];
        layout.copyStrided(
          rt,
          s,
          srcOffset,
          srcStrides,
          d,
          dstOffset,
          dstStrides,
          shape,
          accumulate,
        );
      }),
    reduceSum: (x, shape, out, outStrides, outSize) =>
      call("reduceSum", [out], (o) => {
        layout.reduceSum(rt, o.input(x), shape, out.buffer, outStrides, outSize);
      }),
    sumSquares: (x, n, out, at) =>
      call("sumSquares", [out], (o) => layout.sumSquares(rt, o.input(x), n, out.buffer, at)),
    gatherRows: (table, idx, out, rows, dim) =>
      call("gatherRows", [out], (o) => {
        layout.gatherRows(rt, o.input(table), o.host(idx), out.buffer, rows, dim);
      }),
    scatterAddRows: (gOut, idx, gTable, rows, dim) =>
      call("scatterAddRows", [gTable], (o) => {
        layout.scatterAddRows(rt, o.input(gOut), o.host(idx), gTable.buffer, rows, dim);
      }),

    softmax: (x, out, rows, cols, log) =>
      call("softmax", [out], (o) => {
        softmax.softmax(rt, o.input(x), out.buffer, rows, cols, log);
      }),
    softmaxBackward: (y, gy, gx, rows, cols, log) =>
      call("softmaxBackward", [gx], (o) => {
        softmax.softmaxBackward(rt, o.input(y), o.input(gy), gx.buffer, rows, cols, log);
      }),
    crossEntropy: (logits, targets, loss, lse, rows, V) =>
      call("crossEntropy", [loss, lse], (o) => {
        const [x, t] = [o.input(logits), o.host(targets)];
        softmax.crossEntropy(rt, x, t, loss.buffer, lse.buffer, rows, V);
      }),
    crossEntropyBackward: (logits, targets, lse, gLoss, gLogits, rows, V) =>
      call("crossEntropyBackward", [gLogits], (o) => {
        const [x, t, l, g] = [o.input(logits), o.host(targets), o.input(lse), o.input(gLoss)];
        softmax.crossEntropyBackward(rt, x, t, l, g, gLogits.buffer, rows, V);
      }),

    rmsnorm: (x, w, out, rstd, rows, dim, eps) =>
      call("rmsnorm", [out, rstd], (o) => {
        norm.rmsnorm(rt, o.input(x), o.input(w), out.buffer, rstd.buffer, rows, dim, eps);
      }),
    rmsnormBackward: (x, w, rstd, gy, gx, gw, rows, dim) =>
      call("rmsnormBackward", [gx, gw], (o) => {
        const [xb, wb, r, g] = [o.input(x), o.input(w), o.input(rstd), o.input(gy)];
        norm.rmsnormBackward(rt, xb, wb, r, g, gx.buffer, gw.buffer, rows, dim);
      }),
    groupnorm: (x, w, b, out, mean, rstd, N, G, channels, spatial, eps) =>
      call("groupnorm", [out, mean, rstd], (o) => {
        const ins = [o.input(x), o.optional(w), o.optional(b)] as const;
        const outs = [out.buffer, mean.buffer, rstd.buffer] as const;
        norm.groupnorm(rt, ...ins, ...outs, N, G, channels, spatial, eps);
      }),
    groupnormBackward: (x, w, mean, rstd, gy, gx, gw, gb, N, G, channels, spatial) =>
      call("groupnormBackward", [gx, gw, gb], (o) => {
        const ins = [o.input(x), o.optional(w), o.input(mean), o.input(rstd), o.input(gy)] as const;
        const outs = [gx.buffer, gw?.buffer ?? null, gb?.buffer ?? null] as const;
        norm.groupnormBackward(rt, ...ins, ...outs, N, G, channels, spatial);
      }),

    rope: (x, out, cos, sin, rows, H, D, inverse) =>
      call("rope", [out], (o) => {
        // The kernel runs in place when given the same buffer twice: no copy then.
        const xb = x.buffer === out.buffer ? out.buffer : o.input(x);
        transformer.rope(rt, xb, out.buffer, o.host(cos), o.host(sin), rows, H, D, inverse);
      }),
    attention: (q, k, v, mask, out, lse, shape) =>
      call("attention", [out, lse], (o) => {
        const ins = [o.input(q), o.input(k), o.input(v), mask ? o.host(mask) : null] as const;
        transformer.attention(rt, ...ins, out.buffer, lse.buffer, shape);
      }),
    attentionBackward: (q, k, v, mask, out, lse, gOut, gq, gk, gv, shape) =>
      call("attentionBackward", [gq, gk, gv], (o) => {
        const ins = [o.input(q), o.input(k), o.input(v), mask ? o.host(mask) : null] as const;
        const saved = [o.input(out), o.input(lse), o.input(gOut)] as const;
        const grads = [gq.buffer, gk.buffer, gv.buffer] as const;
        transformer.attentionBackward(rt, ...ins, ...saved, ...grads, shape);
      }),

    conv2d: (x, w, out, ...geometry) =>
      call("conv2d", [out], (o) => {
        conv.conv2d(rt, o.input(x), o.input(w), out.buffer, ...geometry);
      }),
    conv2dBackward: (x, w, gy, gx, gw, ...geometry) =>
      call("conv2dBackward", [gx, gw], (o) => {
        const ins = [o.input(x), o.input(w), o.input(gy)] as const;
        conv.conv2dBackward(rt, ...ins, gx?.buffer ?? null, gw.buffer, ...geometry);
      }),
    upsampleNearest: (x, out, ...geometry) =>
      call("upsampleNearest", [out], (o) => {
        conv.upsampleNearest(rt, o.input(x), out.buffer, ...geometry);
      }),
    upsampleNearestBackward: (gy, gx, ...geometry) =>
      call("upsampleNearestBackward", [gx], (o) => {
        conv.upsampleNearestBackward(rt, o.input(gy), gx.buffer, ...geometry);
      }),

    adamw: (p, g, m, v, n, ...scalars) =>
      call("adamw", [p, m, v], (o) => {
        optimiser.adamw(rt, p.buffer, o.input(g), m.buffer, v.buffer, n, ...scalars);
      }),
  };
}

/**
 * Returns the webgpu backend on a new runtime (an adapter chosen by `options` from `gpu`,
 * default navigator.gpu); throws naming the platform when WebGPU or an adapter is missing.
 */
export async function createWebGpuBackend(
  options?: GPURequestAdapterOptions,
  gpu?: GPU,
): Promise<WebGpuBackend> {
  return webGpuBackend(await WebGpuRuntime.create(options, gpu));
}
