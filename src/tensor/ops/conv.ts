/** Convolution and upsampling for the VAE and the U-Net patch encoder. */

import { backend } from "../backends/current.js";
import { alloc } from "../pool.js";
import { accumulateGrad, empty, record, type Tensor } from "../tensor.js";
import { add } from "./elementwise.js";
import { reshape } from "./shape.js";

export interface Conv2dOptions {
  stride?: number;
  pad?: number;
}

/** Returns the 2-D convolution of x [N, Cin, H, W] with w [Cout, Cin, kh, kw] (+ bias [Cout]). */
export function conv2d(x: Tensor, w: Tensor, bias?: Tensor, opts: Conv2dOptions = {}): Tensor {
  if (x.rank !== 4 || w.rank !== 4) {
    throw new Error(
      `conv2d: x must be [N,C,H,W] and w [Cout,Cin,kh,kw], got [${x.shape}] and [${w.shape}]`,
    );
  }
  const [N, Cin, H, W] = x.shape as [number, number, number, number];
  const [Cout, Cw, kh, kw] = w.shape as [number, number, number, number];
  if (Cw !== Cin) throw new Error(`conv2d: input has ${Cin} channels, weight expects ${Cw}`);
  const stride = opts.stride ?? 1;
  const pad = opts.pad ?? 0;
  const Ho = Math.floor((H + 2 * pad - kh) / stride) + 1;
  const Wo = Math.floor((W + 2 * pad - kw) / stride) + 1;
  if (Ho <= 0 || Wo <= 0) throw new Error(`conv2d: output would be empty for input ${H}×${W}`);
  const out = empty([N, Cout, Ho, Wo]);
  backend().conv2d(x.store, w.store, out.store, N, Cin, H, W, Cout, kh, kw, stride, pad);
  const y = record("conv2d", out, [x, w], (g) => {
    const gx = x.requiresGrad ? alloc(x.size, true) : null;
    const gw = alloc(w.size, true);
    backend().conv2dBackward(x.store, w.store, g, gx, gw, N, Cin, H, W, Cout, kh, kw, stride, pad);
    if (gx) accumulateGrad(x, gx, true);
    accumulateGrad(w, gw, true);
  });
  return bias ? add(y, reshape(bias, [1, Cout, 1, 1])) : y;
}

/** Returns x [N, C, H, W] upsampled by an integer factor (nearest neighbour). */
export function upsampleNearest(x: Tensor, factor = 2): Tensor {
  if (x.rank !== 4) throw new Error("upsampleNearest: x must be [N, C, H, W]");
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const out = empty([N, C, H * factor, W * factor]);
  backend().upsampleNearest(x.store, out.store, N * C, H, W, factor);
  return record("upsampleNearest", out, [x], (g) => {
    const gx = alloc(x.size, true);
    backend().upsampleNearestBackward(g, gx, N * C, H, W, factor);
    accumulateGrad(x, gx, true);
  });
}
