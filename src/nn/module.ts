/** Module: a named tree of parameters, so checkpoints get stable, documented tensor names. */
import type { Rng } from "../tensor/rng.js";
import { full, rand, randn, type Tensor } from "../tensor/tensor.js";

/**
 * A node of the parameter tree, whose registered names join into dotted tensor names
 * (`layers.3.attn.q_proj.weight`). Every field holding a child module or parameter is named the
 * camelCase of its tensor-name segment (`image_codec` → `imageCodec`, `q_proj` → `qProj`,
 * `layers.N` → an array `layers`), so a checkpoint's tensor name leads to the field that owns it.
 */
export abstract class Module {
  private readonly ownParams = new Map<string, Tensor>();
  private readonly children = new Map<string, Module>();

  /** Registers and returns a parameter under `name`. */
  protected param(name: string, t: Tensor): Tensor {
    t.requiresGrad = true;
    this.ownParams.set(name, t);
    return t;
  }

  /** Registers and returns a child module under `name`. */
  protected child<M extends Module>(name: string, m: M): M {
    this.children.set(name, m);
    return m;
  }

  /** Returns [dotted name, tensor] for every parameter, depth first, in registration order. */
  namedParameters(prefix = ""): Array<[string, Tensor]> {
    const out: Array<[string, Tensor]> = [];
    for (const [n, t] of this.ownParams) out.push([prefix + n, t]);
    for (const [n, m] of this.children) out.push(...m.namedParameters(`${prefix}${n}.`));
    return out;
  }

  /** Returns every parameter tensor. */
  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** Returns the total number of parameter elements. */
  parameterCount(): number {
    return this.parameters().reduce((s, t) => s + t.size, 0);
  }

  /** Clears every parameter's gradient. */
  zeroGrad(): void {
    for (const t of this.parameters()) t.grad = null;
  }
}

// Parameters are born in host memory (a device backend moves each to the device when an op
// first uses it), so initialisation and checkpoint loading write them directly.

/** Returns a parameter tensor drawn from N(0, std²). */
export function normalInit(shape: number[], rng: Rng, std: number): Tensor {
  return randn(shape, rng, std);
}

/** Returns a parameter tensor drawn uniformly from ±bound. */
export function uniformInit(shape: number[], rng: Rng, bound: number): Tensor {
  return rand(shape, rng, -bound, bound);
}

/** Returns a parameter tensor of zeros. */
export function zeroInit(shape: number[]): Tensor {
  return full(shape, 0);
}
