// The training-data mixer: the recipe's ordering ratios, caption dropout, the noise cap,
// the corpus-text : image–caption ratio, code runs, and layouts that keep documents whole.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  DEFAULT_MIXER,
  type MixerOptions,
  mixBatch,
  templateDocument,
} from "../../src/data/mixer.js";
import { validateLayout } from "../../src/model/layout.js";
import { Rng } from "../../src/tensor/rng.js";

const PACK = { gridH: 2, gridW: 2, boiId: 1, eoiId: 2, padId: 0, eodId: 3 };
const CAPTION = [10, 11, 12];

function sources(text = true) {
  const captions = Array.from({ length: 50 }, () => CAPTION);
  const latents = new Float32Array(50 * 16).map((_, i) => i);
  return {
    captions,
    latents,
    latentSize: 16,
    ...(text ? { text: Int32Array.from({ length: 5000 }, (_, i) => 20 + (i % 30)) } : {}),
  };
}

function opts(over: Partial<MixerOptions> = {}): MixerOptions {
  return { ...DEFAULT_MIXER, seqLen: 64, rows: 4, ...over };
}

test("caption first 80%, caption dropped in 10% of those, image first 20% with t < 500", () => {
  const rng = new Rng(1);
  let captionFirst = 0;
  let dropped = 0;
  let imageFirst = 0;
  for (let b = 0; b < 300; b++) {
    const { layout } = mixBatch(sources(false), PACK, opts({ textRatio: 0 }), rng);
    const T = layout.seqLen;
    for (const im of layout.images) {
      const boi = im.row * T + im.start - 1;
      const docStart = boi - layout.positions[boi]!;
      const before = boi - docStart;
      const after = layout.tokens[im.row * T + im.start + 4 + 1];
      if (before === CAPTION.length) captionFirst++;
      else if (before === 0 && after === CAPTION[0]) {
        imageFirst++;
        assert.ok(im.t < 500, `image-first t = ${im.t}`);
      } else if (before === 0) dropped++;
      else assert.fail(`unexpected document layout at ${boi}`);
    }
  }
  const total = captionFirst + dropped + imageFirst;
  const cf = (captionFirst + dropped) / total;
  assert.ok(Math.abs(cf - 0.8) < 0.03, `caption-first fraction ${cf}`);
  const dr = dropped / (captionFirst + dropped);
  assert.ok(Math.abs(dr - 0.1) < 0.03, `dropout fraction ${dr}`);
});

test("corpus text and image–caption positions follow the configured ratio", () => {
  // Captions count on the image–caption side, so even a small ratio brings in corpus text.
  for (const ratio of [0.25, 1, 2]) {
    const rng = new Rng(2);
    let corpus = 0;
    let pairs = 0;
    // Whole text rows make a batch's share random (its expectation is the ratio): 400 batches.
    for (let b = 0; b < 400; b++) {
      const { layout } = mixBatch(sources(), PACK, opts({ textRatio: ratio, seqLen: 96 }), rng);
      const T = layout.seqLen;
      const imageDocs = new Set(
        layout.images.map((im) => `${im.row}:${layout.docIds[im.row * T + im.start]}`),
      );
      for (let i = 0; i < layout.tokens.length; i++) {
        if (layout.docIds[i]! < 0) continue;
        if (imageDocs.has(`${Math.floor(i / T)}:${layout.docIds[i]}`)) pairs++;
        else corpus++;
      }
    }
    const measured = corpus / pairs;
    assert.ok(
      Math.abs(measured - ratio) / ratio < 0.2,
      `ratio ${ratio}: measured ${measured.toFixed(2)}`,
    );
  }
});

test("plain-text documents are whole: maxTextChunk tokens, or the rest of a text row", () => {
  const rng = new Rng(5);
  const lengths: number[] = [];
  for (let b = 0; b < 50; b++) {
    const { layout } = mixBatch(sources(), PACK, opts({ seqLen: 96, maxTextChunk: 40 }), rng);
    const T = layout.seqLen;
    for (let r = 0; r < layout.batch; r++) {
      if (layout.images.some((im) => im.row === r)) continue;
      // A text row: documents of 40 tokens + EOD until fewer than 8 + 1 positions remain.
      const docs = new Map<number, number>();
      for (let i = 0; i < T; i++) {
        const d = layout.docIds[r * T + i]!;
        if (d >= 0) docs.set(d, (docs.get(d) ?? 0) + 1);
      }
      lengths.push(...docs.values());
      assert.deepEqual([...docs.values()], [41, 41, 14], `row ${r} of batch ${b}`);
    }
  }
  assert.ok(lengths.length > 0);
  // Runs saved before the option keep their short "filler" documents.
  const filler = mixBatch(sources(), PACK, opts({ seqLen: 96, textDocuments: "filler" }), rng);
  assert.ok(filler.layout.images.length > 0);
});

test("with image codes a batch lays images out as code tokens and carries no latents", () => {
  const codes = Int32Array.from({ length: 50 * 4 }, (_, i) => 100 + (i % 8));
  const b = mixBatch({ ...sources(), codes, latentSize: 4 }, PACK, opts(), new Rng(4));
  assert.equal(b.layout.images.length, 0);
  assert.equal(b.latents.length, 0);
  const T = b.layout.seqLen;
  let runs = 0;
  for (let i = 0; i < b.layout.tokens.length; i++) {
    if (b.layout.tokens[i] !== PACK.boiId) continue;
    runs++;
    const run = [...b.layout.tokens.subarray(i + 1, i + 5)];
    assert.ok(
      run.every((t) => t >= 100 && t < 108),
      `codes after BOI: ${run}`,
    );
    assert.equal(b.layout.tokens[i + 5], PACK.eoiId);
    assert.equal(Math.floor(i / T), Math.floor((i + 5) / T));
  }
  assert.ok(runs > 0);
});

test("batches are valid layouts with whole documents, latents in image order, deterministic", () => {
  const a = mixBatch(sources(), PACK, opts(), new Rng(3));
  const b = mixBatch(sources(), PACK, opts(), new Rng(3));
  assert.deepEqual(a, b);
  validateLayout(a.layout, 100, 4);
  assert.equal(a.latents.length, a.layout.images.length * 16);
  // Each image's latent is one of the source latents, copied whole.
  for (let k = 0; k < a.layout.images.length; k++) {
    const first = a.latents[k * 16]!;
    assert.equal(first % 16, 0);
    for (let j = 0; j < 16; j++) assert.equal(a.latents[k * 16 + j], first + j);
  }
  // Every document ends with EOD in the same row (none is cut at a row boundary).
  const T = a.layout.seqLen;
  for (let r = 0; r < a.layout.batch; r++) {
    let last = -1;
    for (let i = 0; i < T; i++) if (a.layout.docIds[r * T + i]! >= 0) last = i;
    if (last >= 0) assert.equal(a.layout.tokens[r * T + last], PACK.eodId);
  }
});

test("document templates: an image before all text is capped, others use the whole schedule", () => {
  const rng = new Rng(4);
  let maxCapped = 0;
  let maxFree = 0;
  for (let i = 0; i < 2000; i++) {
    const d = templateDocument([{ image: 0 }, { text: [5] }, { image: 1 }], rng, DEFAULT_MIXER);
    const [first, , second] = d.segments as unknown as Array<{ t: number }>;
    maxCapped = Math.max(maxCapped, first!.t);
    maxFree = Math.max(maxFree, second!.t);
  }
  assert.ok(maxCapped < 500);
  assert.ok(maxFree >= 900);
});
