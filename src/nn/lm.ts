/**
 * A plain causal transformer language model (embedding → blocks → norm → head). The core bench
 * and the core tests train it; the Transfusion model builds on the same blocks.
 */
import { crossEntropy, ropeTables } from "../tensor/ops/nn.js";
import { reshape } from "../tensor/ops/shape.js";
import type { Rng } from "../tensor/rng.js";
import type { Tensor } from "../tensor/tensor.js";
import { Embedding, LayerNorm, Linear, RMSNorm } from "./layers.js";
import { Module } from "./module.js";
import { Block, type MlpKind } from "./transformer.js";

export interface LMConfig {
  vocab: number;
  dim: number;
  layers: number;
  heads: number;
  mlpHidden: number;
  mlp: MlpKind;
  norm: "rms" | "layer";
  ropeTheta: number;
}

export class TransformerLM extends Module {
  readonly embed: Embedding;
  readonly layers: Block[];
  readonly norm: RMSNorm | LayerNorm;
  readonly head: Linear;
  private tables = new Map<number, { cos: Float32Array; sin: Float32Array }>();

  constructor(
    readonly config: LMConfig,
    rng: Rng,
  ) {
    super();
    const { dim } = config;
    this.embed = this.child("embed", new Embedding(config.vocab, dim, rng));
    this.layers = [];
    for (let i = 0; i < config.layers; i++) {
      this.layers.push(this.child(`layers.${i}`, new Block(config, rng)));
    }
    this.norm = this.child("norm", config.norm === "rms" ? new RMSNorm(dim) : new LayerNorm(dim));
    this.head = this.child("head", new Linear(dim, config.vocab, rng, { std: 0.02 }));
  }

  /** Returns the parameter count of the blocks and the head (the N of the FLOP formula). */
  blockAndHeadParams(): number {
    return this.layers.reduce((s, b) => s + b.parameterCount(), 0) + this.head.parameterCount();
  }

  private rope(T: number): { cos: Float32Array; sin: Float32Array } {
    let t = this.tables.get(T);
    if (!t) {
      t = ropeTables(
        Array.from({ length: T }, (_, i) => i),
        this.config.dim / this.config.heads,
        this.config.ropeTheta,
      );
      this.tables.set(T, t);
    }
    return t;
  }

  /** Returns logits [B, T, vocab] for token ids [B, T] under a causal mask. */
  forward(ids: Tensor): Tensor {
    const [B, T] = ids.shape as [number, number];
    const { cos, sin } = this.rope(T);
    let x = this.embed.forward(ids);
    for (const b of this.layers) x = b.forward(x, { cos, sin, causal: true });
    const logits = this.head.forward(this.norm.forward(x));
    return reshape(logits, [B, T, this.config.vocab]);
  }

  /** Returns the mean next-token cross-entropy of ids [B, T] against targets [B·T] (−1 = ignore). */
  loss(ids: Tensor, targets: Int32Array): Tensor {
    const logits = this.forward(ids);
    return crossEntropy(reshape(logits, [-1, this.config.vocab]), targets);
  }
}
