// The Transfusion model: mask, layout/targets, encoder shapes, gradient reach, and learning.
import assert from "node:assert/strict";
import { test } from "node:test";
import { packDocuments, type Segment, type TokenDocument } from "../../src/data/pack.js";
import { cosineSchedule } from "../../src/diffusion/schedule.js";
import {
  makeConfig,
  patchesPerImage,
  type TransfusionConfig,
  validateConfig,
} from "../../src/model/config.js";
import { buildMask, type SequenceLayout, validateLayout } from "../../src/model/layout.js";
import { lossValues, noiseBatch, transfusionLoss } from "../../src/model/loss.js";
import { Transfusion } from "../../src/model/transfusion.js";
import { AdamW, clipFactor } from "../../src/tensor/optim.js";
import { Rng } from "../../src/tensor/rng.js";
import { availableBackends, hostGrad, withBackend } from "../helpers.js";

const SPECIAL = { boiId: 1, eoiId: 2, padId: 0, eodId: 3 };

function randomDocs(rng: Rng, count: number, vocab: number, maxImages = 2): TokenDocument[] {
  const docs: TokenDocument[] = [];
  let image = 0;
  for (let d = 0; d < count; d++) {
    const segments: Segment[] = [];
    const parts = 1 + rng.int(3);
    let imgs = 0;
    for (let p = 0; p < parts; p++) {
      if (imgs < maxImages && rng.uniform() < 0.5) {
        segments.push({ image: image++, t: rng.int(1000) });
        imgs++;
      } else {
        segments.push({
          text: Array.from({ length: 1 + rng.int(5) }, () => 4 + rng.int(vocab - 4)),
        });
      }
    }
    docs.push({ segments });
  }
  return docs;
}

function tinyConfig(over: Partial<TransfusionConfig> = {}): TransfusionConfig {
  return makeConfig("tiny", {
    vocab: 32,
    dim: 32,
    layers: 2,
    heads: 4,
    mlpHidden: 64,
    latentSize: 4,
    ...over,
  });
}

test("the mask equals a brute-force reference on random layouts", () => {
  const rng = new Rng(3);
  for (let trial = 0; trial < 20; trial++) {
    const grid = 1 + rng.int(3);
    const { layout } = packDocuments(randomDocs(rng, 1 + rng.int(6), 20), {
      seqLen: 48,
      gridH: grid,
      gridW: grid,
      ...SPECIAL,
    });
    for (const mode of ["bidirectional", "causal"] as const) {
      const mask = buildMask(layout, mode);
      const T = layout.seqLen;
      const imageOf = (b: number, i: number): number =>
        layout.images.findIndex(
          (im) => im.row === b && i >= im.start && i < im.start + im.gridH * im.gridW,
        );
      for (let b = 0; b < layout.batch; b++) {
        for (let i = 0; i < T; i++) {
          for (let j = 0; j < T; j++) {
            const di = layout.docIds[b * T + i]!;
            const dj = layout.docIds[b * T + j]!;
            let allowed: boolean;
            if (di < 0) allowed = i === j;
            else {
              const sameImage =
                mode === "bidirectional" && imageOf(b, i) >= 0 && imageOf(b, i) === imageOf(b, j);
              allowed = di === dj && (j <= i || sameImage);
            }
            assert.equal(
              mask[(b * T + i) * T + j],
              allowed ? 1 : 0,
              `trial ${trial} ${mode} row ${b} (${i}, ${j})`,
            );
          }
        }
      }
    }
  }
});

test("packing: no LM target at BOI or patch positions, targets are next tokens, images in place", () => {
  const rng = new Rng(5);
  const docs = randomDocs(rng, 8, 20);
  const { layout, imageSources } = packDocuments(docs, {
    seqLen: 40,
    gridH: 2,
    gridW: 2,
    ...SPECIAL,
  });
  validateLayout(layout, 32, 4);
  const T = layout.seqLen;
  const isPatch = new Uint8Array(layout.batch * T);
  for (const im of layout.images) isPatch.fill(1, im.row * T + im.start, im.row * T + im.start + 4);
  for (let i = 0; i < layout.batch * T; i++) {
    const tok = layout.tokens[i]!;
    if (tok === SPECIAL.boiId && !isPatch[i])
      assert.equal(layout.textTargets[i], -1, `BOI at ${i} has a target`);
    if (isPatch[i]) assert.equal(layout.textTargets[i], -1, `patch at ${i} has a target`);
    if (layout.textTargets[i]! >= 0) assert.equal(layout.textTargets[i], layout.tokens[i + 1]);
  }
  for (const im of layout.images) {
    assert.equal(layout.tokens[im.row * T + im.start - 1], SPECIAL.boiId);
    assert.equal(layout.tokens[im.row * T + im.start + 4], SPECIAL.eoiId);
  }
  assert.equal(imageSources.length, layout.images.length);
  assert.deepEqual(
    imageSources.map((s) => s.latent),
    imageSources.map((_, i) => i),
  );
  assert.throws(
    () =>
      packDocuments([{ segments: [{ text: new Array(50).fill(5) }] }], {
        seqLen: 40,
        gridH: 2,
        gridW: 2,
        ...SPECIAL,
      }),
    /document 0 needs 51 positions but a row holds 40/,
  );
});

test("config validation names the field", () => {
  assert.throws(() => validateConfig({ ...tinyConfig(), extra: 1 }), /unknown field "extra"/);
  assert.throws(
    () => validateConfig({ ...tinyConfig(), patchSize: 3 }),
    /"patchSize" must be 1, 2, 4 or 8/,
  );
  assert.throws(
    () => validateConfig({ ...tinyConfig(), encoder: "mlp" }),
    /field "encoder" must be one of linear, unet/,
  );
  assert.throws(() => validateConfig({ ...tinyConfig(), heads: 5 }), /divisible by "heads"/);
  const paper = makeConfig("paper-0.16B");
  assert.equal(paper.layers, 16);
  assert.equal(paper.dim, 768);
});

function batchFor(cfg: TransfusionConfig, rng: Rng, docs = 4) {
  const g = cfg.latentSize / cfg.patchSize;
  const packed = packDocuments(randomDocs(rng, docs, cfg.vocab, 1), {
    seqLen: 32,
    gridH: g,
    gridW: g,
    ...SPECIAL,
  });
  const per = cfg.latentChannels * cfg.latentSize * cfg.latentSize;
  const latents = new Float32Array(packed.layout.images.length * per);
  rng.fillNormal(latents);
  return { layout: packed.layout as SequenceLayout, latents };
}

for (const encoder of ["linear", "unet"] as const) {
  for (const patchSize of [1, 2, 4]) {
    test(`${encoder} encoder, patch ${patchSize}: shapes and every parameter gets a gradient`, () => {
      const cfg = tinyConfig({ encoder, patchSize, unetWidth: 8 });
      const rng = new Rng(11);
      const model = new Transfusion(cfg, rng);
      const batch = batchFor(cfg, rng, 6);
      assert.ok(batch.layout.images.length > 0);
      const { xt, t } = noiseBatch(
        batch,
        [cfg.latentChannels, cfg.latentSize, cfg.latentSize],
        cosineSchedule(),
        rng,
      );
      const out = model.forward(batch.layout, xt, t);
      assert.deepEqual(out.imagePred!.shape, [batch.layout.images.length, 4, 4, 4]);
      assert.equal(out.textLogits!.shape[1], cfg.vocab);
      assert.equal(patchesPerImage(cfg), (4 / patchSize) ** 2);
      const loss = transfusionLoss(model, batch, cosineSchedule(), rng);
      loss.total.backward();
      for (const [name, p] of model.namedParameters()) {
        assert.ok(p.grad, `${name} received no gradient`);
        let nz = 0;
        for (const v of hostGrad(p)!) if (v !== 0) nz++;
        assert.ok(nz > 0, `${name} gradient is all zeros`);
      }
    });
  }
}

test("2-D RoPE gives patches row/column positions and changes the output", () => {
  const rng = new Rng(2);
  const cfg = tinyConfig({ patchSize: 1 });
  const batch = batchFor(cfg, rng, 3);
  const m1 = new Transfusion(cfg, new Rng(9));
  const m2 = new Transfusion({ ...cfg, patchRope: "2d" }, new Rng(9));
  // Tables: patches of one grid row share the row-frequency half; of one column, the other half.
  const { cos } = m2.ropeTables(batch.layout);
  const half = cfg.dim / cfg.heads / 2;
  const quarter = half / 2;
  const img = batch.layout.images[0]!;
  const at = (r: number, c: number, i: number) =>
    cos[(img.row * batch.layout.seqLen + img.start + r * img.gridW + c) * half + i]!;
  for (let i = 0; i < quarter; i++) {
    assert.equal(at(1, 0, i), at(1, 3, i));
    assert.equal(at(0, 2, quarter + i), at(3, 2, quarter + i));
  }
  assert.notEqual(at(0, 0, 1), at(1, 0, 1));
  const { xt, t } = noiseBatch(batch, [4, 4, 4], cosineSchedule(), rng);
  const a = m1.forward(batch.layout, xt, t).imagePred!.f32;
  const b = m2.forward(batch.layout, xt, t).imagePred!.f32;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
  assert.ok(diff > 0, "2-D RoPE had no effect on the output");
});

for (const be of availableBackends()) {
  for (const encoder of ["linear", "unet"] as const) {
    test(`a tiny ${encoder} model overfits one mixed batch: text CE and image MSE both fall (${be})`, () =>
      withBackend(be, () => {
        const cfg = tinyConfig({ encoder, patchSize: 2, unetWidth: 8 });
        const rng = new Rng(21);
        const model = new Transfusion(cfg, rng);
        const batch = batchFor(cfg, rng, 4);
        // Fixed timesteps so the image loss is a fixed regression target.
        const schedule = cosineSchedule();
        const opt = new AdamW(model.parameters(), { lr: 3e-3, weightDecay: 0 });
        const measure = () => {
          const l = transfusionLoss(model, batch, schedule, new Rng(1));
          return l;
        };
        const first = lossValues(measure());
        for (let i = 0; i < 150; i++) {
          const l = measure();
          l.total.backward();
          opt.update(3e-3, clipFactor(model.parameters(), 1).factor);
          opt.zeroGrad();
        }
        const last = lossValues(measure());
        assert.ok(last.lm < first.lm * 0.2, `text CE ${first.lm} → ${last.lm}`);
        assert.ok(last.image < first.image * 0.5, `image MSE ${first.image} → ${last.image}`);
      }));
  }
}
