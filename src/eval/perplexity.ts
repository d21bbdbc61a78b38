/**
 * Language-modelling quality on plain text: bits per UTF-8 byte (comparable across tokenizers)
 * and per-token perplexity, from teacher-forced forward passes over fixed-length windows.
 */
import { packDocuments, type TokenDocument } from "../data/pack.js";
import type { TransfusionPipeline } from "../generate/pipeline.js";
import type { SequenceLayout } from "../model/layout.js";
import type { ForwardOptions, Transfusion } from "../model/transfusion.js";
import { crossEntropy } from "../tensor/ops/nn.js";
import { noGrad, type Tensor } from "../tensor/tensor.js";

export interface BitsPerByteOptions {
  /** Tokens per window (each window is one document; context restarts at every window). */
  seqLen: number;
  /** Score only the longest prefix of the text with at most this many UTF-8 bytes. */
  maxBytes?: number;
  /** Windows per forward pass (default 8). */
  batch?: number;
}

export interface BitsPerByteResult {
  /** Total cross-entropy in bits divided by the UTF-8 bytes of the scored text. */
  bitsPerByte: number;
  /** exp(mean cross-entropy per predicted token), in the tokenizer's units. */
  perplexity: number;
  /** Tokens predicted (every token of the scored text but the first). */
  tokens: number;
  /** UTF-8 bytes of the scored text. */
  bytes: number;
  /** Total cross-entropy in nats. */
  nats: number;
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

/**
 * Returns the summed cross-entropy (nats) of every text target the model predicts for
 * `layout` (without recording a graph), and how many there are: the per-token losses are read
 * back and summed in float64 rather than in a float32 scalar.
 */
export async function textNats(
  model: Transfusion,
  layout: SequenceLayout,
  xt: Tensor | null,
  t: ArrayLike<number>,
  opts: ForwardOptions,
): Promise<{ nats: number; tokens: number }> {
  const losses = noGrad(() => {
    const out = model.forward(layout, xt, t, opts);
    if (!out.textLogits) return null;
    const targets = Int32Array.from(out.textRows, (r) => layout.textTargets[r]!);
    return crossEntropy(out.textLogits, targets, "none");
  });
  if (!losses) return { nats: 0, tokens: 0 };
  let nats = 0;
  for (const l of await losses.readF32()) nats += l;
  return { nats, tokens: losses.size };
}

/** Returns the longest prefix of `text` of at most `maxBytes` UTF-8 bytes (whole characters). */
export function truncateUtf8(text: string, maxBytes: number): string {
  const bytes = utf8.encode(text);
  if (bytes.length <= maxBytes) return text;
  let end = maxBytes;
  // Back off continuation bytes (10xxxxxx) so no character is split.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return utf8Decoder.decode(bytes.subarray(0, end));
}

/**
 * Returns the start offsets of the windows over `count` tokens: windows of `seqLen` tokens that
 * overlap by one token, so that each token but the first is predicted exactly once (the last
 * token of a window is the first of the next, which predicts from it with fresh context).
 */
export function windowStarts(count: number, seqLen: number): number[] {
  const starts: number[] = [];
  for (let s = 0; s + 1 < count; s += seqLen - 1) starts.push(s);
  return starts;
}

/**
 * Returns bits per byte and per-token perplexity of `pipeline`'s language model on `text`.
 *
 * The text (cut to `maxBytes`) is tokenised with the pipeline's tokenizer and cut into windows of
 * `seqLen` tokens overlapping by one (see `windowStarts`), each packed as its own document with no
 * images and no end-of-document token. The model runs under noGrad; the cross-entropy (nats) of
 * every predicted token is summed, and bits per byte = Σ nats / ln 2 / UTF-8 bytes of the text.
 * The first token has no prediction; its bytes still count, a negligible bias on long texts.
 */
export async function bitsPerByte(
  pipeline: TransfusionPipeline,
  text: string,
  opts: BitsPerByteOptions,
): Promise<BitsPerByteResult> {
  const { seqLen } = opts;
  if (!Number.isInteger(seqLen) || seqLen < 2) {
    throw new Error(`bitsPerByte: seqLen must be an integer ≥ 2, got ${seqLen}`);
  }
  if (pipeline.contextLength !== null && seqLen > pipeline.contextLength) {
    throw new Error(
      `bitsPerByte: seqLen ${seqLen} is longer than the context of ${pipeline.contextLength} the model was trained with`,
    );
  }
  const batch = opts.batch ?? 8;
  if (!Number.isInteger(batch) || batch < 1) {
    throw new Error(`bitsPerByte: batch must be an integer ≥ 1, got ${batch}`);
  }
  if (opts.maxBytes !== undefined && !(opts.maxBytes >= 0)) {
    throw new Error(`bitsPerByte: maxBytes must be ≥ 0, got ${opts.maxBytes}`);
  }
  const scored = opts.maxBytes === undefined ? text : truncateUtf8(text, opts.maxBytes);
  const bytes = utf8.encode(scored).length;
  const ids = pipeline.tokenizer.encode(scored);
  if (ids.length < 2) {
    throw new Error(
      `bitsPerByte: the text has ${ids.length} token(s); at least 2 are needed to predict one`,
    );
  }
  const special = pipeline.special;
  const grid = pipeline.config.latentSize / pipeline.config.patchSize;
  const starts = windowStarts(ids.length, seqLen);
  let nats = 0;
  let tokens = 0;
  for (let at = 0; at < starts.length; at += batch) {
    const docs: TokenDocument[] = starts
      .slice(at, at + batch)
      .map((s) => ({ segments: [{ text: ids.slice(s, s + seqLen) }] }));
    const { layout } = packDocuments(
      docs,
      {
        seqLen,
        gridH: grid,
        gridW: grid,
        boiId: special.boiId,
        eoiId: special.eoiId,
        padId: special.padId,
      },
      docs.length,
    );
    const r = await textNats(pipeline.model, layout, null, [], { skipImagePred: true });
    nats += r.nats;
    tokens += r.tokens;
  }
  const mean = nats / tokens;
  return {
    bitsPerByte: bytes > 0 ? nats / Math.LN2 / bytes : Number.NaN,
    perplexity: Math.exp(mean),
    tokens,
    bytes,
    nats,
  };
}
