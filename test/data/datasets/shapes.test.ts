import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  exampleSeed,
  parseShapeCaption,
  SHAPE_POSITIONS,
  SHAPE_RELATIONS,
  SHAPES_DIFFICULTY,
  shapesDataset,
} from "../../../src/data/datasets/shapes.js";
import {
  foregroundLayout,
  looksLikeNoise,
  positionOf,
  relationBetween,
  scoreShapeImage,
  shapeAttributesFromPixels,
} from "../../../src/data/datasets/shapes-checker.js";
import {
  renderShapes,
  SHAPE_BACKGROUND,
  SHAPE_COLOURS,
} from "../../../src/data/datasets/shapes-render.js";
import type { Image } from "../../../src/data/image.js";
import { Rng } from "../../../src/tensor/rng.js";

describe("shapes dataset", () => {
  it("is deterministic: same seed gives identical bytes, another seed differs", () => {
    const a = shapesDataset({ seed: 1 }).split("train");
    const b = shapesDataset({ seed: 1 }).split("train");
    const c = shapesDataset({ seed: 2 }).split("train");
    let differing = 0;
    for (let i = 0; i < 50; i++) {
      assert.deepEqual(a.get(i), b.get(i));
      if (!Buffer.from(a.get(i).image.data).equals(Buffer.from(c.get(i).image.data))) differing++;
    }
    assert.equal(differing, 50);
    // Random access: reading out of order gives the same example.
    assert.deepEqual(a.get(7), shapesDataset({ seed: 1 }).split("train").get(7));
  });

  it("draws train and test from disjoint generator seeds", () => {
    const train = new Set<number>();
    for (let i = 0; i < 50000; i++) train.add(exampleSeed(0, "train", i));
    assert.equal(train.size, 50000);
    for (let i = 0; i < 5000; i++) assert.ok(!train.has(exampleSeed(0, "test", i)), `test ${i}`);
  });

  it("has the configured sizes, image shape and a plain background", () => {
    const ds = shapesDataset({ imageSize: 48, trainSize: 100, testSize: 10 });
    assert.equal(ds.split("train").size, 100);
    assert.equal(ds.split("test").size, 10);
    assert.equal(ds.channels, 3);
    const { image } = ds.split("test").get(3);
    assert.equal(image.width, 48);
    assert.equal(image.data.length, 48 * 48 * 3);
    assert.deepEqual([...image.data.subarray(0, 3)], [...SHAPE_BACKGROUND]);
    assert.throws(() => ds.split("test").get(10), /shapes: index 10 out of range \[0, 10\)/);
    assert.throws(() => shapesDataset({ imageSize: 8 }), /imageSize must be an integer in \[16/);
  });

  it("has sane pixel statistics: mostly background, shapes covering 3–45%", () => {
    const split = shapesDataset().split("train");
    let shapeFraction = 0;
    for (let i = 0; i < 200; i++) {
      const { data } = split.get(i).image;
      let covered = 0;
      for (let p = 0; p < data.length; p += 3) {
        if (data[p] !== 240 || data[p + 1] !== 240 || data[p + 2] !== 240) covered++;
      }
      const f = covered / (data.length / 3);
      assert.ok(f > 0.03 && f < 0.45, `example ${i}: ${f}`);
      shapeFraction += f / 200;
    }
    assert.ok(shapeFraction > 0.08 && shapeFraction < 0.25, `mean ${shapeFraction}`);
  });

  it("writes every caption from its labels, and the caption parses back to them", () => {
    for (const difficulty of ["easy", "medium", "hard"] as const) {
      const config = SHAPES_DIFFICULTY[difficulty];
      const split = shapesDataset({ difficulty }).split("train");
      for (let i = 0; i < 1000; i++) {
        const { caption, labels } = split.get(i);
        assert.ok((config.kinds as readonly string[]).includes(labels.kind as string));
        assert.ok((config.colours as readonly string[]).includes(labels.colour as string));
        assert.ok(labels.size === "small" || labels.size === "large");
        const parsed = parseShapeCaption(caption);
        assert.ok(parsed, `caption ${i} "${caption}" does not parse`);
        for (const [key, value] of Object.entries(parsed))
          assert.equal(labels[key], value, `${caption}: ${key}`);
        if (labels.shapes === 1) {
          assert.ok((SHAPE_POSITIONS as readonly string[]).includes(labels.position as string));
          assert.ok(caption.includes(`${labels.size} ${labels.colour} ${labels.kind}`));
        } else {
          assert.equal(difficulty === "easy", false);
          assert.ok((SHAPE_RELATIONS as readonly string[]).includes(labels.relation as string));
          assert.notEqual(labels.colour, labels.colour2);
        }
      }
    }
  });

  it("gives the captions the examples promise for known indices", () => {
    const split = shapesDataset({ seed: 0 }).split("train");
    const captions = Array.from({ length: 200 }, (_, i) => split.get(i).caption);
    assert.ok(
      captions.some((c) =>
        /^an? \w+ \w+ (to the left of|to the right of|above|below) an? \w+ \w+$/.test(c),
      ),
    );
    assert.ok(captions.some((c) => / on the left$/.test(c)));
    assert.ok(captions.some((c) => /^a (small|large) \w+ \w+$/.test(c)));
    assert.ok(
      captions.every((c) => !/\ba orange\b/.test(c)),
      "article before orange",
    );
  });

  it("generates thousands of images per second", () => {
    const split = shapesDataset().split("train");
    const start = performance.now();
    const n = 5000;
    for (let i = 0; i < n; i++) split.get(i);
    const perSecond = n / ((performance.now() - start) / 1000);
    console.log(`shapes: ${Math.round(perSecond)} images/s`);
    assert.ok(perSecond > 2000, `${perSecond} images/s`);
  });
});

/** Returns the image with Gaussian noise of the given standard deviation added. */
function noisy(image: Image, rng: Rng, sigma: number): Image {
  const data = image.data.map((v) =>
    Math.max(0, Math.min(255, Math.round(v + sigma * rng.normal()))),
  );
  return { ...image, data };
}

describe("shapes pixel checker", () => {
  it("recovers every attribute of held-out images (clean and with noise)", () => {
    const rng = new Rng(3);
    const n = 600;
    for (const difficulty of ["medium", "hard"] as const) {
      const split = shapesDataset({ difficulty, seed: 99 }).split("test");
      const kinds = SHAPES_DIFFICULTY[difficulty].kinds;
      let clean = 0;
      let noisyAll = 0;
      let noisyColour = 0;
      for (let i = 0; i < n; i++) {
        const { image, labels } = split.get(i);
        if (scoreShapeImage(image, labels, { kinds }).all) clean++;
        const score = scoreShapeImage(noisy(image, rng, 20), labels, { kinds });
        if (score.all) noisyAll++;
        if (score.colour) noisyColour++;
      }
      console.log(
        `checker ${difficulty}: clean all-attributes ${(clean / n).toFixed(3)}, ` +
          `noise σ=20 all ${(noisyAll / n).toFixed(3)}, colour ${(noisyColour / n).toFixed(3)}`,
      );
      assert.ok(clean / n >= 0.99, `clean accuracy ${clean / n}`);
      assert.ok(noisyAll / n >= 0.95, `noisy accuracy ${noisyAll / n}`);
      assert.ok(noisyColour / n >= 0.99, `noisy colour accuracy ${noisyColour / n}`);
    }
  });

  it("reports colour, kind, size and position of a single shape", () => {
    const split = shapesDataset({ difficulty: "easy" }).split("test");
    const { image, labels } = split.get(0);
    const detection = shapeAttributesFromPixels(image);
    assert.equal(detection.shapes.length, 1);
    const [shape] = detection.shapes;
    assert.equal(shape!.colour, labels.colour);
    assert.equal(shape!.kind, labels.kind);
    assert.equal(shape!.size, labels.size);
    assert.equal(detection.position, labels.position);
  });

  it("finds nothing in a blank or grey image and scores it as wrong", () => {
    const blank: Image = {
      width: 32,
      height: 32,
      channels: 3,
      data: new Uint8Array(32 * 32 * 3).fill(240),
    };
    assert.deepEqual(shapeAttributesFromPixels(blank).shapes, []);
    const grey: Image = {
      width: 32,
      height: 32,
      channels: 1,
      data: new Uint8Array(32 * 32).fill(90),
    };
    assert.deepEqual(shapeAttributesFromPixels(grey).shapes, []);
    const score = scoreShapeImage(blank, {
      shapes: 1,
      kind: "circle",
      colour: "red",
      size: "small",
      position: "left",
    });
    assert.deepEqual(score, {
      count: false,
      colour: false,
      kind: false,
      size: false,
      layout: false,
      all: false,
    });
  });

  it("scores a parsed prompt without sizes (size is null, not failed)", () => {
    const split = shapesDataset({ seed: 5 }).split("test");
    for (let i = 0; i < 100; i++) {
      const { image, caption, labels } = split.get(i);
      if (labels.shapes !== 2) continue;
      const score = scoreShapeImage(image, parseShapeCaption(caption)!);
      assert.equal(score.size, null);
      assert.equal(score.all, true, caption);
      return;
    }
    assert.fail("no two-shape example in the first 100");
  });

  it("names positions and relations by the dominant axis", () => {
    assert.equal(positionOf({ x: 0.5, y: 0.52 }), "centre");
    assert.equal(positionOf({ x: 0.27, y: 0.5 }), "left");
    assert.equal(positionOf({ x: 0.5, y: 0.75 }), "bottom");
    assert.equal(relationBetween({ x: 0.25, y: 0.6 }, { x: 0.75, y: 0.4 }), "left of");
    assert.equal(relationBetween({ x: 0.45, y: 0.25 }, { x: 0.55, y: 0.75 }), "above");
  });

  it("tells coloured noise from scenes, however wrong the scene", () => {
    // Real scenes: one foreground region per shape (fewer when they touch), never noise.
    const split = shapesDataset({ difficulty: "medium", seed: 8 }).split("test");
    for (let i = 0; i < 300; i++) {
      const { image } = split.get(i);
      assert.ok(foregroundLayout(image).regions <= 2, `example ${i}`);
      assert.equal(looksLikeNoise(image), false, `example ${i}`);
    }
    // Blotches of palette colours over the whole picture, as decoded random latents look.
    const rng = new Rng(11);
    const palette = Object.values(SHAPE_COLOURS);
    let flagged = 0;
    for (let k = 0; k < 50; k++) {
      const cells = 4 + rng.int(5);
      const colours = Array.from({ length: cells * cells }, () =>
        rng.uniform() < 0.35 ? SHAPE_BACKGROUND : palette[rng.int(palette.length)]!,
      );
      const data = new Uint8Array(32 * 32 * 3);
      for (let y = 0; y < 32; y++) {
        for (let x = 0; x < 32; x++) {
          const c = colours[Math.floor((y * cells) / 32) * cells + Math.floor((x * cells) / 32)]!;
          for (let ch = 0; ch < 3; ch++) data[3 * (y * 32 + x) + ch] = c[ch]!;
        }
      }
      if (looksLikeNoise({ width: 32, height: 32, channels: 3, data })) flagged++;
    }
    assert.ok(flagged >= 45, `${flagged} of 50 blotch images flagged`);
    // A shape painted half in one colour, half in another: a miss, not noise.
    const two = renderShapes(32, [
      { kind: "square", rgb: SHAPE_COLOURS.red, cx: 16, cy: 16, extent: 13 },
    ]);
    for (let y = 0; y < 32; y++) {
      for (let x = 16; x < 32; x++) {
        const p = 3 * (y * 32 + x);
        if (two.data[p] !== SHAPE_BACKGROUND[0]) two.data.set(SHAPE_COLOURS.green, p);
      }
    }
    assert.equal(foregroundLayout(two).regions, 1);
    assert.equal(looksLikeNoise(two), false);
  });
});
