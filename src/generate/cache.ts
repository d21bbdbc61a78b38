/**
 * Incremental decoding with a key/value cache. Every row of a batch shares one cache length
 * (rows whose prompts are shorter carry masked-out padding columns), so a text step appends one
 * column to every row and an image block appends the same number of patch columns to every row.
 *
 * An image block is evaluated without advancing the cache (`commit` false) once per denoising
 * step, so the model only ever sees the latest x_t; the final call with the clean latent commits
 * its keys/values, and text after the image attends to those (docs/RECIPE.md §6).
 */
import { documentLength, packDocuments, type TokenDocument } from "../data/pack.js";
import { patchesPerImage } from "../model/config.js";
import { buildMask } from "../model/layout.js";
import { placePatchPositions, ropeTablesFor, type Transfusion } from "../model/transfusion.js";
import { forwardCached, type LayerCache } from "../nn/cached.js";
import { gather, reshape } from "../tensor/ops/shape.js";
import { withArena } from "../tensor/pool.js";
import { noGrad, Tensor } from "../tensor/tensor.js";

export interface SpecialIds {
  boiId: number;
  eoiId: number;
  padId: number;
  eodId: number;
}

export class DecodeState {
  readonly layers: LayerCache[];
  /** Columns in use (shared by all rows). */
  length = 0;
  /** [B, capacity]: 1 where a row's column holds a real position. */
  readonly valid: Uint8Array;
  /** RoPE position of each row's next element. */
  readonly nextPos: Int32Array;

  constructor(
    readonly model: Transfusion,
    readonly batch: number,
    readonly capacity: number,
  ) {
    const c = model.config;
    const per = batch * capacity * c.dim; // Hkv·D = dim (no grouped-query heads in this model)
    const shape = [batch, capacity, c.heads, c.dim / c.heads];
    const empty = () => new Tensor(new Float32Array(per), shape);
    this.layers = model.layers.map(() => ({ k: empty(), v: empty() }));
    this.valid = new Uint8Array(batch * capacity);
    this.nextPos = new Int32Array(batch);
  }

  private need(n: number): void {
    if (this.length + n > this.capacity) {
      throw new Error(
        `the sequence would reach ${this.length + n} positions, beyond the context of ${this.capacity}`,
      );
    }
  }

  /** Runs new positions through the blocks; returns the final-normed hidden states [B·Tn, dim]. */
  private run(
    x: Tensor,
    Tn: number,
    mask: Uint8Array,
    cos: Float32Array,
    sin: Float32Array,
    imageRows: Int32Array,
  ): Tensor {
    const m = this.model;
    let h = reshape(x, [this.batch, Tn, m.config.dim]);
    const modality = m.modalityOf(this.batch * Tn, imageRows);
    const step = { offset: this.length, capacity: this.capacity, mask, cos, sin, modality };
    m.layers.forEach((b, i) => {
      h = forwardCached(b, h, step, this.layers[i]!);
    });
    return reshape(m.norm.forward(h), [this.batch * Tn, m.config.dim]);
  }

  /** Returns the [B, Tn, capacity] mask: valid cached columns plus the new block's own rule. */
  private stepMask(Tn: number, bidirectional: boolean): Uint8Array {
    const { batch: B, capacity: S, length: L } = this;
    const mask = new Uint8Array(B * Tn * S);
    for (let b = 0; b < B; b++) {
      for (let i = 0; i < Tn; i++) {
        const m = (b * Tn + i) * S;
        mask.set(this.valid.subarray(b * S, b * S + L), m);
        const upto = bidirectional ? Tn : i + 1;
        mask.fill(1, m + L, m + L + upto);
      }
    }
    return mask;
  }

  /**
   * Prefills the cache with one prompt document per row (images in prompts are clean latents,
   * given in order in `latents` [N, C, H, W] flattened). Returns the logits [B, vocab] at each
   * row's last prompt position (null for an empty prompt row: its next token is forced).
   */
  prefill(prompts: readonly TokenDocument[], latents: Float32Array, special: SpecialIds): Tensor {
    if (prompts.length !== this.batch)
      throw new Error(`prefill: ${prompts.length} prompts for ${this.batch} rows`);
    const m = this.model;
    const c = m.config;
    const g = c.latentSize / c.patchSize;
    const lens = prompts.map((p) => documentLength(p, { gridH: g, gridW: g }));
    const Lp = Math.max(1, ...lens);
    this.need(Lp);
    return pooled(() => {
      // One document per row: pack each prompt alone into a row of length Lp.
      // No end-of-document token: the prompt continues.
      const pack = {
        seqLen: Lp,
        gridH: g,
        gridW: g,
        boiId: special.boiId,
        eoiId: special.eoiId,
        padId: special.padId,
      };
      const layouts = prompts.map((p) => packDocuments([p], pack, 1).layout);
      const B = this.batch;
      const tokens = new Int32Array(B * Lp);
      const docIds = new Int32Array(B * Lp);
      const positions = new Int32Array(B * Lp);
      const images = layouts.flatMap((l, b) =>
        l.images.map((im) => ({ ...im, row: b, t: 0, diffuse: false })),
      );
      layouts.forEach((l, b) => {
        tokens.set(l.tokens, b * Lp);
        docIds.set(l.docIds, b * Lp);
        positions.set(l.positions, b * Lp);
      });
      const layout = {
        batch: B,
        seqLen: Lp,
        tokens,
        textTargets: new Int32Array(B * Lp).fill(-1),
        docIds,
        positions,
        images,
      };
      const per = c.latentChannels * c.latentSize * c.latentSize;
      if (latents.length !== images.length * per) {
        throw new Error(
          `prefill: prompts hold ${images.length} images but ${latents.length / per} latents were given`,
        );
      }
      const xt = images.length
        ? new Tensor(latents, [images.length, c.latentChannels, c.latentSize, c.latentSize])
        : null;
      // Prompt images are clean latents, embedded at t = 0.
      const { x, patchIdx: patchRows } = m.embedInputs(layout, xt, new Int32Array(images.length));
      const full = buildMask(layout, c.imageAttention);
      const mask = new Uint8Array(B * Lp * this.capacity);
      for (let r = 0; r < B * Lp; r++)
        mask.set(full.subarray(r * Lp, (r + 1) * Lp), r * this.capacity);
      const { cos, sin } = m.ropeTables(layout);
      const h = this.run(x, Lp, mask, cos, sin, patchRows);
      const last = new Int32Array(B);
      lens.forEach((len, b) => {
        last[b] = b * Lp + Math.max(0, len - 1);
        this.valid.set(
          docIds.subarray(b * Lp, (b + 1) * Lp).map((d) => (d >= 0 ? 1 : 0)),
          b * this.capacity,
        );
        this.nextPos[b] = len;
      });
      this.length = Lp;
      return m.head.forward(gather(h, last));
    });
  }

  /** Appends one token per row; returns the logits [B, vocab] for the next position. */
  appendTokens(ids: Int32Array): Tensor {
    if (ids.length !== this.batch)
      throw new Error(`appendTokens: ${ids.length} ids for ${this.batch} rows`);
    this.need(1);
    return pooled(() => {
      const m = this.model;
      const pos = Float64Array.from(this.nextPos);
      const { cos, sin } = ropeTablesFor(m.config, pos, pos);
      const h = this.run(
        m.embed.forward(ids),
        1,
        this.stepMask(1, false),
        cos,
        sin,
        new Int32Array(0),
      );
      for (let b = 0; b < this.batch; b++) {
        this.valid[b * this.capacity + this.length] = 1;
        this.nextPos[b]!++;
      }
      this.length++;
      return m.head.forward(h);
    });
  }

  /**
   * Evaluates one image block per row (latents xt [B, C, H, W] at timesteps t) right after the
   * cached prefix; returns the decoder's prediction [B, C, H, W]. With `commit` the block's
   * keys/values stay in the cache and the length advances past it.
   */
  imageBlock(xt: Tensor, t: ArrayLike<number>, commit: boolean): Tensor {
    const m = this.model;
    const c = m.config;
    const n = patchesPerImage(c);
    this.need(n);
    return pooled(() => {
      const g = c.latentSize / c.patchSize;
      const rowPos = new Float64Array(this.batch * n);
      const colPos = new Float64Array(this.batch * n);
      for (let b = 0; b < this.batch; b++) {
        placePatchPositions(c, this.nextPos[b]!, g, n, rowPos, colPos, b * n);
      }
      const { cos, sin } = ropeTablesFor(c, rowPos, colPos);
      const codec = m.requireImageCodec();
      const enc = codec.encode(xt, t);
      const mask = this.stepMask(n, c.imageAttention === "bidirectional");
      // Every new row is a patch.
      const allRows = Int32Array.from({ length: this.batch * n }, (_, i) => i);
      const h = this.run(enc.tokens, n, mask, cos, sin, allRows);
      const pred = codec.decode(h, this.batch, enc.skips);
      if (commit) {
        for (let b = 0; b < this.batch; b++) {
          this.valid.fill(1, b * this.capacity + this.length, b * this.capacity + this.length + n);
          this.nextPos[b] = this.nextPos[b]! + n;
        }
        this.length += n;
      }
      return pred;
    });
  }
}

/** Returns fn's tensor computed without a graph inside an arena, copied out of the pool. */
function pooled(fn: () => Tensor): Tensor {
  return withArena(() => {
    const t = noGrad(fn);
    return t.clone();
  });
}
