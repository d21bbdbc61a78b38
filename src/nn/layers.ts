/** Basic layers: Linear, Embedding, RMSNorm, LayerNorm, GroupNorm, Conv2d. */
import { conv2d } from "../tensor/ops/conv.js";
import { linear } from "../tensor/ops/linalg.js";
import { groupNorm, layerNorm, rmsNorm } from "../tensor/ops/nn.js";
import { gather } from "../tensor/ops/shape.js";
import type { Rng } from "../tensor/rng.js";
import { ones, type Tensor } from "../tensor/tensor.js";
import { Module, normalInit, uniformInit, zeroInit } from "./module.js";

export interface LinearOptions {
  bias?: boolean;
  /** Standard deviation of the normal init; default 1/√in (fan-in). */
  std?: number;
}

/** y = x·Wᵀ (+ b) with W [out, in]. */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | undefined;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    rng: Rng,
    opts: LinearOptions = {},
  ) {
    super();
    const std = opts.std ?? 1 / Math.sqrt(inFeatures);
    this.weight = this.param("weight", normalInit([outFeatures, inFeatures], rng, std));
    this.bias = opts.bias ? this.param("bias", zeroInit([outFeatures])) : undefined;
  }
  /** Returns the layer applied to x [..., in]. */
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}

/** Lookup table [vocab, dim]. */
export class Embedding extends Module {
  readonly weight: Tensor;
  constructor(
    readonly vocab: number,
    readonly dim: number,
    rng: Rng,
    std = 0.02,
  ) {
    super();
    this.weight = this.param("weight", normalInit([vocab, dim], rng, std));
  }
  /** Returns the rows for `ids` (shape [...ids, dim]). */
  forward(ids: Tensor | Int32Array): Tensor {
    return gather(this.weight, ids);
  }
}

/** RMSNorm with a learned gain (no bias), as in Llama. */
export class RMSNorm extends Module {
  readonly weight: Tensor;
  constructor(
    readonly dim: number,
    readonly eps = 1e-5,
  ) {
    super();
    this.weight = this.param("weight", ones([dim]));
  }
  /** Returns x normalised over its last axis. */
  forward(x: Tensor): Tensor {
    return rmsNorm(x, this.weight, this.eps);
  }
}

/** LayerNorm with learned gain and bias. */
export class LayerNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(
    readonly dim: number,
    readonly eps = 1e-5,
  ) {
    super();
    this.weight = this.param("weight", ones([dim]));
    this.bias = this.param("bias", zeroInit([dim]));
  }
  /** Returns x normalised over its last axis. */
  forward(x: Tensor): Tensor {
    return layerNorm(x, this.weight, this.bias, this.eps);
  }
}

/** GroupNorm over [N, C, ...] with per-channel gain and bias. */
/**
 * Returns the GroupNorm group count for `channels`: the largest of 8, 4, 2 and 1 that divides
 * it (8 groups where the width allows, as small convolutional models commonly use).
 */
export function groupsFor(channels: number): number {
  return [8, 4, 2, 1].find((g) => channels % g === 0)!;
}

export class GroupNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(
    readonly groups: number,
    readonly channels: number,
    readonly eps = 1e-5,
  ) {
    super();
    if (channels % groups !== 0)
      throw new Error(`GroupNorm: ${channels} channels, ${groups} groups`);
    this.weight = this.param("weight", ones([channels]));
    this.bias = this.param("bias", zeroInit([channels]));
  }
  /** Returns x normalised per group. */
  forward(x: Tensor): Tensor {
    return groupNorm(x, this.groups, this.weight, this.bias, this.eps);
  }
}

/** 2-D convolution with bias; weight [out, in, k, k]. */
export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernel: number,
    rng: Rng,
    readonly stride = 1,
    readonly pad = Math.floor(kernel / 2),
  ) {
    super();
    const bound = 1 / Math.sqrt(inChannels * kernel * kernel);
    this.weight = this.param(
      "weight",
      uniformInit([outChannels, inChannels, kernel, kernel], rng, bound),
    );
    this.bias = this.param("bias", zeroInit([outChannels]));
  }
  /** Returns the convolution of x [N, in, H, W]. */
  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, { stride: this.stride, pad: this.pad });
  }
}
