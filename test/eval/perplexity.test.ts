// Bits per byte and per-token perplexity of a tiny random-weight pipeline.
import assert from "node:assert/strict";
import { test } from "node:test";
import { trainBpe } from "../../src/data/bpe-train.js";
import { packDocuments } from "../../src/data/pack.js";
import { bitsPerByte, truncateUtf8, windowStarts } from "../../src/eval/perplexity.js";
import { TransfusionPipeline } from "../../src/generate/pipeline.js";
import { Transfusion } from "../../src/model/transfusion.js";
import { Vae, vaeConfig } from "../../src/model/vae.js";
import { Rng } from "../../src/tensor/rng.js";
import { noGrad } from "../../src/tensor/tensor.js";
import { tinyConfig } from "../batches.js";

const SENTENCES = [
  "the quick brown fox jumps over the lazy dog.",
  "a red circle sits above a blue square.",
  "call me ishmael. some years ago, never mind how long precisely.",
  "the whale, the whale! the sea was calm and the sky was grey.",
];

function pipeline(): TransfusionPipeline {
  const tokenizer = trainBpe(SENTENCES, { vocabSize: 300 });
  const cfg = tinyConfig({ vocab: tokenizer.vocabSize });
  const model = new Transfusion(cfg, new Rng(1));
  const vae = new Vae(vaeConfig({ baseChannels: 8, groups: 4, levels: 2 }), new Rng(2));
  return new TransfusionPipeline(model, tokenizer, vae);
}

const P = pipeline();
const TEXT = "the quick brown whale sits above a calm sea. ";

test("windows overlap by one token so each token but the first is predicted once", () => {
  assert.deepEqual(windowStarts(10, 4), [0, 3, 6]);
  assert.deepEqual(windowStarts(4, 4), [0]);
  assert.deepEqual(windowStarts(1, 4), []);
});

test("truncateUtf8 never splits a character", () => {
  assert.equal(truncateUtf8("héllo", 2), "h"); // é is two bytes
  assert.equal(truncateUtf8("héllo", 3), "hé");
  assert.equal(truncateUtf8("abc", 10), "abc");
  assert.equal(truncateUtf8("🐋x", 3), "");
});

test("bitsPerByte equals a hand computation from one direct forward pass", async () => {
  const ids = P.tokenizer.encode(TEXT);
  const seqLen = ids.length; // one window covers the whole text
  const got = await bitsPerByte(P, TEXT, { seqLen });
  const { layout } = packDocuments(
    [{ segments: [{ text: ids }] }],
    {
      seqLen,
      gridH: 2,
      gridW: 2,
      boiId: P.special.boiId,
      eoiId: P.special.eoiId,
      padId: P.special.padId,
    },
    1,
  );
  const logits = noGrad(() =>
    P.model.forward(layout, null, [], { textRows: Int32Array.from(ids.slice(1), (_, i) => i) }),
  ).textLogits!.f32;
  const V = P.model.config.vocab;
  let nats = 0;
  for (let i = 0; i + 1 < ids.length; i++) {
    const row = logits.subarray(i * V, (i + 1) * V);
    let max = -Infinity;
    for (const x of row) max = Math.max(max, x);
    let z = 0;
    for (const x of row) z += Math.exp(x - max);
    nats += max + Math.log(z) - row[ids[i + 1]!]!;
  }
  const bytes = new TextEncoder().encode(TEXT).length;
  const want = nats / Math.LN2 / bytes;
  assert.equal(got.tokens, ids.length - 1);
  assert.equal(got.bytes, bytes);
  assert.ok(Number.isFinite(got.bitsPerByte) && got.bitsPerByte > 0);
  assert.ok(Math.abs(got.bitsPerByte - want) < 1e-5 * want, `${got.bitsPerByte} vs ${want}`);
  assert.ok(Math.abs(got.perplexity - Math.exp(nats / (ids.length - 1))) < 1e-4 * got.perplexity);
});

test("a random-weight model's per-token perplexity is near the vocabulary size", async () => {
  const text = SENTENCES.join(" ").repeat(3);
  const r = await bitsPerByte(P, text, { seqLen: 16 });
  const V = P.model.config.vocab;
  assert.equal(r.tokens, P.tokenizer.encode(text).length - 1);
  assert.ok(r.perplexity > V / 2 && r.perplexity < V * 2, `perplexity ${r.perplexity}, vocab ${V}`);
  assert.ok(Number.isFinite(r.bitsPerByte) && r.bitsPerByte > 0);
});

test("batching windows does not change the result; maxBytes cuts the text", async () => {
  const text = SENTENCES.join(" ");
  const one = await bitsPerByte(P, text, { seqLen: 8, batch: 1 });
  const many = await bitsPerByte(P, text, { seqLen: 8, batch: 5 });
  assert.equal(one.tokens, many.tokens);
  assert.ok(Math.abs(one.nats - many.nats) < 1e-4 * one.nats);
  const cut = await bitsPerByte(P, text, { seqLen: 8, maxBytes: 40 });
  assert.equal(cut.bytes, 40);
  assert.equal(cut.tokens, P.tokenizer.encode(text.slice(0, 40)).length - 1);
});

test("bitsPerByte rejects bad options and too-short texts", async () => {
  await assert.rejects(() => bitsPerByte(P, TEXT, { seqLen: 1 }), /seqLen must be an integer ≥ 2/);
  await assert.rejects(() => bitsPerByte(P, "", { seqLen: 8 }), /at least 2 are needed/);
  const limited = new TransfusionPipeline(P.model, P.tokenizer, P.vae, "x", 8);
  await assert.rejects(
    () => bitsPerByte(limited, TEXT, { seqLen: 16 }),
    /longer than the context of 8/,
  );
});
