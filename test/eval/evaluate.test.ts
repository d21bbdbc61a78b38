// evaluatePipeline: how generation accuracy, FID, its real floor and caption accuracy are counted,
// checked with stand-in pipelines whose outputs are known, and end to end with a tiny model.
import assert from "node:assert/strict";
import { test } from "node:test";
import { trainBpe } from "../../src/data/bpe-train.js";
import { getDataset, parseShapeCaption } from "../../src/data/datasets/index.js";
import {
  placeShapeScene,
  type ShapeRelation,
  type ShapeScene,
  type ShapeSize,
} from "../../src/data/datasets/shapes.js";
import {
  renderShapes,
  type ShapeColour,
  type ShapeKind,
} from "../../src/data/datasets/shapes-render.js";
import type { Example, ImageTextDataset } from "../../src/data/datasets/types.js";
import type { Image } from "../../src/data/image.js";
import { classifierSpecFor, EvalClassifier } from "../../src/eval/classifier.js";
import { captionMatches, evaluatePipeline } from "../../src/eval/evaluate.js";
import { captionLoss } from "../../src/eval/held-out-loss.js";
import { fid } from "../../src/eval/metrics.js";
import { sameScene } from "../../src/eval/shapes.js";
import { TransfusionPipeline } from "../../src/generate/pipeline.js";
import { makeConfig } from "../../src/model/config.js";
import { Transfusion } from "../../src/model/transfusion.js";
import { Vae, vaeConfig } from "../../src/model/vae.js";
import { Rng } from "../../src/tensor/rng.js";

const N = 12;
const shapes = await getDataset("shapes", { difficulty: "easy", imageSize: 32 });
const clf = new EvalClassifier(classifierSpecFor(shapes, "easy"), new Rng(3));
const test_ = shapes.split("test");
const heldOut = (from: number, n: number): Example[] =>
  Array.from({ length: n }, (_, i) => test_.get(from + i));

/** A tiny random-weight pipeline over the shapes captions. */
function tinyPipeline(): TransfusionPipeline {
  const captions = heldOut(0, 40).map((e) => e.caption);
  const tokenizer = trainBpe([...captions, "call me ishmael. the whale, the sea."], {
    vocabSize: 300,
  });
  const vae = new Vae(vaeConfig({ baseChannels: 8, groups: 4, levels: 3 }), new Rng(2));
  const [C, h] = vae.latentShape(32, 32);
  const cfg = makeConfig("tiny", {
    vocab: tokenizer.vocabSize,
    dim: 32,
    layers: 1,
    heads: 4,
    mlpHidden: 48,
    latentChannels: C,
    latentSize: h,
    patchSize: h >= 4 ? 2 : 1,
  });
  return new TransfusionPipeline(new Transfusion(cfg, new Rng(1)), tokenizer, vae, "tiny", 96);
}
const TINY = tinyPipeline();

/** The tiny pipeline with its images and captions replaced by the functions given. */
function fake(
  draw: (caption: string, index: number) => Image,
  describe: (image: Image, index: number) => string,
): TransfusionPipeline {
  const p = Object.create(TINY) as TransfusionPipeline;
  p.textToImage = async (captions, o = {}) => {
    const at = o.firstSample ?? 0;
    return { images: captions.map((c, i) => draw(c, at + i)), latents: [] };
  };
  p.caption = async (images) => images.map((img, i) => describe(img, i));
  return p;
}

test("a generator that returns the real images scores the classifier's own accuracy, and its FID equals the real-vs-real floor", async () => {
  const real = heldOut(0, N);
  // Held-out examples are rendered afresh on every read: images are matched by their pixels.
  const key = (img: Image) => Buffer.from(img.data).toString("latin1");
  const truth = new Map(real.map((e) => [key(e.image), e.caption]));
  const p = fake(
    (_c, i) => real[i]!.image,
    (img) => truth.get(key(img))!,
  );
  const r = await evaluatePipeline(p, shapes, {
    count: N,
    batch: 5,
    textCorpus: null,
    classifier: clf,
  });
  const pred = clf.predict(real.map((e) => e.image)).labels;
  let right = 0;
  pred.forEach((labels, i) => {
    if (clf.targets(real[i]!.labels).every((t, h) => labels[h] === t)) right++;
  });
  assert.equal(r.generationAccuracy, right / N);
  assert.ok(r.fid !== null && r.fidRealFloor !== null);
  assert.ok(Math.abs(r.fid - r.fidRealFloor) <= 1e-9 * (1 + r.fidRealFloor));
  // The floor is the distance between the first N and the next N held-out images.
  const d = clf.spec.featureDim;
  const a = clf.predict(real.map((e) => e.image)).features;
  const b = clf.predict(heldOut(N, N).map((e) => e.image)).features;
  assert.ok(Math.abs(r.fidRealFloor - fid(a, N, b, N, d)) <= 1e-9 * (1 + r.fidRealFloor));
  // The pixel checker passes every real image; captions equal to the truth are all right.
  assert.equal(r.checkerAccuracy, 1);
  // Real scenes hold one or two shapes: none is noise.
  assert.equal(r.noiseImages, 0);
  assert.equal(r.captionAccuracy, 1);
  assert.equal(r.captionExact, 1);
  assert.equal(r.captionAllAttributes, 1);
  assert.equal(r.bitsPerByte, null);
  assert.equal(r.generated.length, N);
  assert.equal(r.captions.length, N);
});

test("blank images are far from real ones and fail the checker; wrong captions score zero", async () => {
  const blank = (): Image => ({
    width: 32,
    height: 32,
    channels: 3,
    data: new Uint8Array(32 * 32 * 3),
  });
  const p = fake(blank, () => "a purple banana in the sky");
  const r = await evaluatePipeline(p, shapes, { count: N, textCorpus: null, classifier: clf });
  assert.equal(r.checkerAccuracy, 0);
  assert.equal(r.captionAccuracy, 0);
  assert.ok(r.fid! > 2 * r.fidRealFloor!, `fid ${r.fid} vs floor ${r.fidRealFloor}`);
  // A blank image holds no shape, which is how the checker sees a sample gone to noise.
  assert.equal(r.noiseImages, 1);
});

test("images that diverged into noise are counted as noise", async () => {
  const rng = new Rng(4);
  const noise = (): Image => {
    const data = new Uint8Array(32 * 32 * 3);
    for (let i = 0; i < data.length; i++) data[i] = rng.int(256);
    return { width: 32, height: 32, channels: 3, data };
  };
  const real = heldOut(0, N);
  // Every other image is noise; the rest are the real images of their captions.
  const p = fake(
    (_c, i) => (i % 2 === 0 ? noise() : real[i]!.image),
    () => "",
  );
  const r = await evaluatePipeline(p, shapes, { count: N, textCorpus: null, classifier: clf });
  assert.equal(r.noiseImages, Math.ceil(N / 2) / N);
});

test("caption accuracy for shapes counts colour and kind, in any order; other data need the exact label", () => {
  const ex = heldOut(0, 1)[0]!;
  const { colour, kind, size } = ex.labels as { colour: string; kind: string; size: string };
  const other = size === "large" ? "small" : "large";
  // Size and position may be wrong; colour and kind may not.
  assert.ok(captionMatches("shapes", `a ${other} ${colour} ${kind} on the left`, ex));
  assert.ok(
    !captionMatches("shapes", `a ${size} ${colour === "red" ? "blue" : "red"} ${kind}`, ex),
  );
  assert.ok(!captionMatches("shapes", "not a caption", ex));
  const digit: Example = { image: ex.image, caption: "the digit seven", labels: { digit: 7 } };
  assert.ok(captionMatches("mnist", " The digit seven ", digit));
  assert.ok(!captionMatches("mnist", "the digit one", digit));
});

test("two-shape scenes are judged on what their caption states: no sizes, either order", async () => {
  const medium = await getDataset("shapes", { difficulty: "medium", imageSize: 32 });
  const split = medium.split("test");
  const pairs = Array.from({ length: 60 }, (_, i) => split.get(i)).filter(
    (e) => e.labels.shapes === 2,
  );
  assert.ok(pairs.length >= 12);
  // The same shapes and relation at the other sizes; each caption worded from the other shape.
  const flip = (size: unknown): ShapeSize => (size === "small" ? "large" : "small");
  const resized = (e: Example): Image => {
    const l = e.labels;
    const scene: ShapeScene = {
      shapes: [
        { kind: l.kind as ShapeKind, colour: l.colour as ShapeColour, size: flip(l.size) },
        { kind: l.kind2 as ShapeKind, colour: l.colour2 as ShapeColour, size: flip(l.size2) },
      ],
      relation: l.relation as ShapeRelation,
    };
    return renderShapes(32, placeShapeScene(new Rng(5), scene, 32));
  };
  const inverse: Record<string, string> = {
    "to the left of": "to the right of",
    "to the right of": "to the left of",
    above: "below",
    below: "above",
  };
  const reworded = (caption: string): string => {
    const m = /^an? (\w+ \w+) (to the left of|to the right of|above|below) an? (\w+ \w+)$/.exec(
      caption,
    )!;
    const an = (w: string) => (/^[aeiou]/.test(w) ? "an" : "a");
    return `${an(m[3]!)} ${m[3]} ${inverse[m[2]!]} ${an(m[1]!)} ${m[1]}`;
  };
  const drawn = pairs.map(resized);
  const byCaption = new Map(pairs.map((e, i) => [e.caption, drawn[i]!]));
  const p = fake(
    (c) => byCaption.get(c)!,
    (_img, i) => reworded(pairs[i]!.caption),
  );
  // The evaluation reads held-out examples in order: a dataset of the pairs alone.
  const onlyPairs: ImageTextDataset = {
    ...medium,
    split: (name) =>
      name === "test" ? { size: pairs.length, get: (i: number) => pairs[i]! } : medium.split(name),
  } as ImageTextDataset;
  const r = await evaluatePipeline(p, onlyPairs, {
    count: pairs.length,
    textCorpus: null,
    classifier: null,
    skip: { imageLoss: true },
  });
  assert.equal(r.checkerAccuracy, 1);
  assert.equal(r.checkerAllAttributes, 1);
  assert.equal(r.captionAllAttributes, 1);
  assert.equal(r.captionExact, 0);
});

test("a caption states the same scene when every attribute agrees, a pair in either order", () => {
  const scene = (c: string) => parseShapeCaption(c)!;
  const pair = scene("a red circle above a blue square");
  assert.ok(sameScene(pair, scene("a red circle above a blue square")));
  assert.ok(sameScene(pair, scene("a blue square below a red circle")));
  assert.ok(!sameScene(pair, scene("a blue square above a red circle")));
  assert.ok(!sameScene(pair, scene("a red circle below a blue square")));
  assert.ok(!sameScene(pair, scene("a red square above a blue circle")));
  const left = scene("a large green triangle on the left");
  assert.ok(sameScene(left, scene("a large green triangle on the left")));
  assert.ok(!sameScene(left, scene("a small green triangle on the left")));
  assert.ok(!sameScene(left, scene("a large green triangle on the right")));
  assert.ok(!sameScene(left, null));
  assert.ok(!sameScene(pair, left));
});

test("skipped directions report null and a too-small held-out split is an error naming the dataset", async () => {
  const p = fake(
    () => heldOut(0, 1)[0]!.image,
    () => "",
  );
  const r = await evaluatePipeline(p, shapes, {
    count: 4,
    textCorpus: null,
    classifier: clf,
    skip: { captions: true },
  });
  assert.equal(r.captionAccuracy, null);
  assert.ok(r.generationAccuracy !== null);
  const small = {
    name: "tiny-set",
    channels: 3,
    imageSize: 32,
    licence: "",
    split: () => ({ size: 5, get: (i: number) => test_.get(i) }),
  } as unknown as ImageTextDataset;
  await assert.rejects(
    () => evaluatePipeline(p, small, { count: 4, textCorpus: null, classifier: clf }),
    /tiny-set: 8 held-out examples needed, the test split has 5/,
  );
});

test("a tiny real pipeline is scored in every direction with finite metrics", async () => {
  const r = await evaluatePipeline(TINY, shapes, {
    count: 4,
    batch: 2,
    image: { sampler: "ddim", steps: 2 },
    textCorpus: "moby-dick",
    textBytes: 600,
    classifier: clf,
  });
  for (const k of ["bitsPerByte", "fid", "fidRealFloor", "captionLoss"] as const) {
    assert.ok(Number.isFinite(r[k]) && r[k]! >= 0, `${k} = ${r[k]}`);
  }
  for (const k of ["generationAccuracy", "captionAccuracy", "checkerAccuracy"] as const) {
    assert.ok(r[k]! >= 0 && r[k]! <= 1, `${k} = ${r[k]}`);
  }
  assert.equal(r.settings.image.sampler, "ddim");
  assert.equal(r.settings.seqLen, 96);
  assert.equal(r.settings.classifier, "shapes-easy");
});

test("caption loss does not depend on how examples are batched (documents never see each other)", async () => {
  const ex = heldOut(0, 6);
  const together = await captionLoss(TINY, ex, 6);
  // Per-example losses weighted by their token counts (caption tokens + end of document).
  const count = (e: Example) => TINY.tokenizer.encode(e.caption).length + 1;
  let sum = 0;
  for (const e of ex) sum += (await captionLoss(TINY, [e], 1)) * count(e);
  const weighted = sum / ex.reduce((s, e) => s + count(e), 0);
  assert.ok(Math.abs(together - weighted) < 1e-4, `${together} vs ${weighted}`);
  assert.ok(together > 0 && Number.isFinite(together));
});
