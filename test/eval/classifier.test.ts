// Evaluation classifiers: order-free shapes targets, brief training reaching held-out accuracy,
// predictions and features, files (round trip and errors naming the file), ensureClassifier.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { getDataset } from "../../src/data/datasets/index.js";
import { createImage } from "../../src/data/image.js";
import {
  CLASSIFIER_JSON_FILE,
  CLASSIFIER_WEIGHTS_FILE,
  classifierDirName,
  classifierSpecFor,
  classifierSpecForName,
  EvalClassifier,
  ensureClassifier,
  loadClassifier,
  saveClassifier,
  trainClassifier,
} from "../../src/eval/classifier.js";
import { colourAndKindMatch } from "../../src/eval/shapes.js";
import { Rng } from "../../src/tensor/rng.js";

const tmp = mkdtempSync(join(tmpdir(), "classifier-test-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const twoShapes = {
  shapes: 2,
  kind: "circle",
  colour: "red",
  relation: "above",
  kind2: "square",
  colour2: "blue",
};
const swapped = {
  shapes: 2,
  kind: "square",
  colour: "blue",
  relation: "below",
  kind2: "circle",
  colour2: "red",
};

test("shapes targets are order-free, 'none' for one shape, and agree with colourAndKindMatch", () => {
  const c = new EvalClassifier(
    classifierSpecForName("shapes", { difficulty: "medium" }),
    new Rng(0),
  );
  const [first, second] = c.spec.heads;
  assert.equal(first!.name, "first");
  assert.equal(second!.name, "second");
  assert.equal(first!.classes.length, 18); // 6 colours × 3 kinds
  assert.equal(second!.classes.at(-1), "none");
  const t = c.targets(twoShapes);
  assert.deepEqual(c.targets(swapped), t);
  assert.deepEqual(c.describe(t), { first: "blue square", second: "red circle" });
  assert.ok(colourAndKindMatch(twoShapes, swapped));
  const one = c.targets({ shapes: 1, kind: "triangle", colour: "green", position: "left" });
  assert.deepEqual(c.describe(one), { first: "green triangle", second: "none" });
  // Differing pairs give differing targets.
  assert.notDeepEqual(c.targets({ ...twoShapes, colour2: "green" }), t);
  // An easy classifier has no orange; it says so instead of guessing.
  const easy = new EvalClassifier(
    classifierSpecForName("shapes", { difficulty: "easy" }),
    new Rng(0),
  );
  assert.throws(
    () => easy.targets({ shapes: 1, kind: "circle", colour: "orange" }),
    /'orange circle' is not a class of head "first"/,
  );
  assert.throws(() => c.targets({ kind: "circle", colour: "red" }), /"shapes" must be 1 or 2/);
});

test("mnist and fashion-mnist targets are the class index; bad labels are rejected", () => {
  const m = new EvalClassifier(classifierSpecForName("mnist"), new Rng(0));
  assert.deepEqual(
    m.spec.heads.map((h) => h.name),
    ["digit"],
  );
  assert.deepEqual(m.targets({ digit: 7 }), [7]);
  assert.throws(() => m.targets({ digit: 12 }), /labels\.digit/);
  assert.throws(() => m.targets({ class: 3 }), /labels\.digit/);
  const f = new EvalClassifier(classifierSpecForName("fashion-mnist"), new Rng(0));
  assert.deepEqual(f.targets({ class: 9, name: "Ankle boot" }), [9]);
  assert.equal(f.spec.heads[0]!.classes[9], "Ankle boot");
});

test("classifierSpecFor refuses emoji; classifierDirName names folders", async () => {
  const shapes = await getDataset("shapes", { difficulty: "easy" });
  const spec = classifierSpecFor(shapes, "easy");
  assert.equal(spec.channels, 3);
  assert.equal(spec.imageSize, 32);
  assert.equal(spec.heads[0]!.classes.length, 12);
  const emojiLike = {
    name: "emoji",
    channels: 3,
    imageSize: 32,
    licence: "",
    split: () => {
      throw new Error("unused");
    },
  } as const;
  assert.throws(() => classifierSpecFor(emojiLike), /no evaluation classifier for dataset 'emoji'/);
  assert.equal(classifierDirName("mnist"), "mnist");
  assert.equal(classifierDirName("shapes", "easy"), "shapes-easy");
  assert.equal(classifierDirName("shapes"), "shapes-medium");
  assert.throws(() => classifierDirName("nope"), /no evaluation classifier/);
});

// Trained once, on first use, shared by the tests below (150 steps of batch 32, a few seconds).
let shapesTraining: ReturnType<typeof trainClassifier> | undefined;
const shapesRun = () =>
  (shapesTraining ??= trainClassifier({
    dataset: "shapes",
    difficulty: "easy",
    steps: 150,
    batchSize: 32,
    testImages: 500,
  }));

test("shapes easy: 150 steps reach held-out accuracy ≥ 0.9 (all heads right)", async () => {
  const { report } = await shapesRun();
  assert.equal(report.testImages, 500);
  assert.equal(report.steps, 150);
  assert.ok(report.accuracy >= 0.9, `accuracy ${report.accuracy}`);
  assert.ok(report.headAccuracy["second"]! >= 0.9, JSON.stringify(report.headAccuracy));
});

test("mnist: 200 steps reach held-out accuracy ≥ 0.9", async () => {
  const { report } = await trainClassifier({
    dataset: "mnist",
    steps: 200,
    batchSize: 32,
    testImages: 500,
  });
  assert.ok(report.accuracy >= 0.9, `accuracy ${report.accuracy}`);
  assert.ok(report.headAccuracy["digit"]! >= 0.9);
});

test("predict returns one label per head and finite n×featureDim features, in any batching", async () => {
  const { classifier } = await shapesRun();
  const test = (await getDataset("shapes", { difficulty: "easy" })).split("test");
  const examples = Array.from({ length: 37 }, (_, i) => test.get(i));
  const images = examples.map((e) => e.image);
  const a = classifier.predict(images);
  const b = classifier.predict(images, 8);
  assert.equal(a.labels.length, 37);
  assert.ok(a.labels.every((l) => l.length === 2));
  assert.equal(a.features.length, 37 * classifier.spec.featureDim);
  assert.ok(a.features.every(Number.isFinite));
  assert.ok(a.features.some((v) => v !== 0));
  assert.deepEqual(b.labels, a.labels);
  for (let i = 0; i < a.features.length; i++)
    assert.ok(Math.abs(a.features[i]! - b.features[i]!) < 1e-4, `feature ${i}`);
  // matches() compares with caption labels; a wrong caption is caught.
  const ok = classifier.matches(
    images,
    examples.map((e) => e.labels),
  );
  assert.ok(ok.filter(Boolean).length >= 30);
  const wrong = classifier.matches([images[0]!], [twoShapes]);
  assert.deepEqual(wrong, [false]);
  assert.throws(
    () => classifier.predict([createImage(28, 28, 3)]),
    /image 0 is 28×28×3, the classifier reads 32×32×3/,
  );
});

test("save → load gives identical predictions and features; bad files are named", async () => {
  const { classifier, report } = await shapesRun();
  const dir = join(tmp, "saved");
  saveClassifier(classifier, dir, report);
  const loaded = loadClassifier(dir);
  assert.deepEqual(loaded.report, report);
  assert.deepEqual(loaded.classifier.spec, classifier.spec);
  const test = (await getDataset("shapes", { difficulty: "easy" })).split("test");
  const images = Array.from({ length: 20 }, (_, i) => test.get(i).image);
  const a = classifier.predict(images);
  const b = loaded.classifier.predict(images);
  assert.deepEqual(b.labels, a.labels);
  assert.deepEqual(b.features, a.features);

  const missing = join(tmp, "missing");
  assert.throws(
    () => loadClassifier(missing),
    (e: Error) => e.message.includes(join(missing, CLASSIFIER_JSON_FILE)),
  );
  const corrupt = join(tmp, "corrupt");
  saveClassifier(classifier, corrupt, report);
  writeFileSync(join(corrupt, CLASSIFIER_JSON_FILE), "{ not json");
  assert.throws(
    () => loadClassifier(corrupt),
    (e: Error) =>
      e.message.includes(join(corrupt, CLASSIFIER_JSON_FILE)) && /not valid JSON/.test(e.message),
  );
  const badWeights = join(tmp, "bad-weights");
  saveClassifier(classifier, badWeights, report);
  writeFileSync(join(badWeights, CLASSIFIER_WEIGHTS_FILE), "short");
  assert.throws(
    () => loadClassifier(badWeights),
    (e: Error) => e.message.includes(join(badWeights, CLASSIFIER_WEIGHTS_FILE)),
  );
});

test("ensureClassifier trains and saves once, then loads; a mismatched request is an error", async () => {
  const root = join(tmp, "root");
  const opts = { dataset: "shapes", difficulty: "easy" as const, steps: 3, testImages: 20, root };
  const first = await ensureClassifier(opts);
  assert.equal(first.trained, true);
  assert.equal(first.dir, join(root, "shapes-easy"));
  const second = await ensureClassifier(opts);
  assert.equal(second.trained, false);
  assert.deepEqual(second.report, first.report);
  await assert.rejects(
    ensureClassifier({ ...opts, imageSize: 48, outDir: first.dir }),
    /at 32×32, but shapes \(easy\) at 48×48 was asked for/,
  );
});
