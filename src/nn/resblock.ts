/**
 * The convolutional residual block of the VAE, the VQ tokenizer and the U-Net patch codec:
 * GroupNorm → SiLU → 3×3 conv, (+ a projected timestep embedding), GroupNorm → SiLU → 3×3 conv,
 * added to the input (through a 1×1 conv when the width changes).
 *
 * Tensor names: norm1, conv1, t_proj (with a timestep), norm2, conv2, skip (when widths differ).
 */
import { add, silu } from "../tensor/ops/elementwise.js";
import { reshape } from "../tensor/ops/shape.js";
import type { Rng } from "../tensor/rng.js";
import type { Tensor } from "../tensor/tensor.js";
import { Conv2d, GroupNorm, groupsFor, Linear } from "./layers.js";
import { Module } from "./module.js";

export interface ResBlockOptions {
  /** GroupNorm groups of both norms (default: groupsFor of each norm's width). */
  groups?: number;
  /** Width of the timestep embedding added after the first conv (none by default). */
  tDim?: number;
}

export class ResBlock extends Module {
  readonly norm1: GroupNorm;
  readonly conv1: Conv2d;
  readonly tProj: Linear | undefined;
  readonly norm2: GroupNorm;
  readonly conv2: Conv2d;
  readonly skip: Conv2d | undefined;
  constructor(
    readonly inCh: number,
    readonly outCh: number,
    rng: Rng,
    o: ResBlockOptions = {},
  ) {
    super();
    this.norm1 = this.child("norm1", new GroupNorm(o.groups ?? groupsFor(inCh), inCh));
    this.conv1 = this.child("conv1", new Conv2d(inCh, outCh, 3, rng));
    this.tProj = o.tDim
      ? this.child("t_proj", new Linear(o.tDim, outCh, rng, { bias: true }))
      : undefined;
    this.norm2 = this.child("norm2", new GroupNorm(o.groups ?? groupsFor(outCh), outCh));
    this.conv2 = this.child("conv2", new Conv2d(outCh, outCh, 3, rng));
    this.skip = inCh !== outCh ? this.child("skip", new Conv2d(inCh, outCh, 1, rng)) : undefined;
  }

  /** Returns the input (or its 1×1 projection) plus the residual; `temb` [N, tDim] if any. */
  forward(x: Tensor, temb: Tensor | null = null): Tensor {
    let h = this.conv1.forward(silu(this.norm1.forward(x)));
    if (this.tProj && temb) {
      const N = x.shape[0]!;
      h = add(h, reshape(this.tProj.forward(silu(temb)), [N, this.outCh, 1, 1]));
    }
    h = this.conv2.forward(silu(this.norm2.forward(h)));
    return add(this.skip ? this.skip.forward(x) : x, h);
  }
}
