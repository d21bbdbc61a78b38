// The training-data mixer: SPEC.md's ordering ratios, caption dropout, the noise cap,
// the text:image ratio, and layouts that keep documents whole.
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

test("text and image positions follow the configured ratio", () => {
  // Captions alone give 3 text positions per 4 patch positions here, so ratios start above 0.75.
  for (const ratio of [1, 2]) {
    const rng = new Rng(2);
    let text = 0;
    let image = 0;
    for (let b = 0; b < 100; b++) {
      const { layout } = mixBatch(sources(), PACK, opts({ textRatio: ratio, seqLen: 96 }), rng);
      image += layout.images.length * 4;
      for (let i = 0; i < layout.tokens.length; i++) {
        if (layout.docIds[i]! >= 0 && layout.tokens[i]! >= 10) text++;
      }
    }
    const measured = text / image;
    assert.ok(
      Math.abs(measured - ratio) / ratio < 0.35,
      `ratio ${ratio}: measured ${measured.toFixed(2)}`,
    );
  }
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
