/**
 * `shapes`: generated pictures of one or two coloured shapes with captions made from their
 * attributes ("a small red circle on the left", "a blue square above a green triangle").
 * No download; every example is a pure function of (seed, split, index), so any index can be
 * read in any order and train and test never share a generator seed.
 */
import { Rng } from "../../tensor/rng.js";
import type { Image } from "../image.js";
import {
  type PlacedShape,
  renderShapes,
  SHAPE_COLOURS,
  SHAPE_KINDS,
  type ShapeColour,
  type ShapeKind,
} from "./shapes-render.js";
import {
  checkIndex,
  checkIntOption,
  checkSplitName,
  type DatasetSplit,
  type Example,
  type ImageTextDataset,
  type Labels,
  type SplitName,
} from "./types.js";

export type ShapeSize = "small" | "large";
export const SHAPE_POSITIONS = ["centre", "left", "right", "top", "bottom"] as const;
export type ShapePosition = (typeof SHAPE_POSITIONS)[number];
export const SHAPE_RELATIONS = ["left of", "right of", "above", "below"] as const;
export type ShapeRelation = (typeof SHAPE_RELATIONS)[number];
export type ShapesDifficulty = "easy" | "medium" | "hard";

/** What a difficulty level draws from. */
export interface ShapesConfig {
  maxShapes: 1 | 2;
  kinds: readonly ShapeKind[];
  colours: readonly ShapeColour[];
}

export const SHAPES_DIFFICULTY: Record<ShapesDifficulty, ShapesConfig> = {
  easy: {
    maxShapes: 1,
    kinds: ["circle", "square", "triangle"],
    colours: ["red", "green", "blue", "yellow"],
  },
  medium: {
    maxShapes: 2,
    kinds: ["circle", "square", "triangle"],
    colours: ["red", "orange", "yellow", "green", "blue", "purple"],
  },
  hard: {
    maxShapes: 2,
    kinds: SHAPE_KINDS,
    colours: ["red", "orange", "yellow", "green", "blue", "purple"],
  },
};

/** Returns true when `v` names a difficulty level. */
export function isShapesDifficulty(v: unknown): v is ShapesDifficulty {
  return typeof v === "string" && Object.hasOwn(SHAPES_DIFFICULTY, v);
}

export interface ShapesOptions {
  /** Side in pixels (default 32, at least 16). */
  imageSize?: number;
  /** Base seed; train and test derive disjoint per-example seeds from it (default 0). */
  seed?: number;
  /** What scenes may contain (default "medium": 1–2 shapes, 3 kinds, 6 colours). */
  difficulty?: ShapesDifficulty;
  /** Examples per split (defaults 50,000 and 5,000); any size costs nothing until read. */
  trainSize?: number;
  testSize?: number;
}

/** Attributes of one shape as a caption names them. */
export interface ShapeAttributes {
  kind: ShapeKind;
  colour: ShapeColour;
  size: ShapeSize;
}

/** What one picture shows: one shape at a position, or two shapes in a relation. */
export type ShapeScene =
  | { shapes: [ShapeAttributes]; position: ShapePosition }
  | { shapes: [ShapeAttributes, ShapeAttributes]; relation: ShapeRelation };

// Geometry as fractions of the image side. Small and large leave a clear gap (0.31 vs 0.40)
// so the pixel checker can tell them apart; two large shapes still fit side by side.
const EXTENT: Record<ShapeSize, [number, number]> = { small: [0.25, 0.31], large: [0.4, 0.46] };
const ANCHOR: Record<ShapePosition, [number, number]> = {
  centre: [0.5, 0.5],
  left: [0.27, 0.5],
  right: [0.73, 0.5],
  top: [0.5, 0.27],
  bottom: [0.5, 0.73],
};
const POSITION_JITTER = 0.03;
const PAIR_OFFSET = 0.25; // each shape's distance from the centre along the relation axis
const PAIR_JITTER_ALONG = 0.012;
const PAIR_JITTER_ACROSS = 0.1;
const COLOUR_JITTER = 8;
const SPLIT_BIT: Record<SplitName, number> = { train: 0, test: 1 };

/**
 * Returns the 32-bit generator seed of one example. (index, split) → 2·index + split is
 * one-to-one, and xor with a constant and murmur3's finaliser are bijections on 32 bits, so
 * no train example shares a seed with a test example (for indices below 2³¹).
 */
export function exampleSeed(seed: number, split: SplitName, index: number): number {
  return fmix32(((index * 2 + SPLIT_BIT[split]) ^ fmix32(seed ^ 0x5eed5eed)) >>> 0);
}

/** Returns murmur3's 32-bit finaliser of x (a bijection that mixes every bit). */
function fmix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** Returns a random scene drawn from the config. */
export function sampleShapeScene(rng: Rng, config: ShapesConfig): ShapeScene {
  const pick = <T>(list: readonly T[]): T => list[rng.int(list.length)]!;
  const attrs = (colours: readonly ShapeColour[]): ShapeAttributes => ({
    kind: pick(config.kinds),
    colour: pick(colours),
    size: rng.uniform() < 0.5 ? "small" : "large",
  });
  const count = config.maxShapes === 2 && rng.uniform() < 0.5 ? 2 : 1;
  const first = attrs(config.colours);
  if (count === 1) return { shapes: [first], position: pick(SHAPE_POSITIONS) };
  // Distinct colours so "the red one" names one shape in the caption and for the checker.
  const second = attrs(config.colours.filter((c) => c !== first.colour));
  return { shapes: [first, second], relation: pick(SHAPE_RELATIONS) };
}

/** Returns the shapes of the scene placed in a size×size image, with jittered geometry. */
export function placeShapeScene(rng: Rng, scene: ShapeScene, size: number): PlacedShape[] {
  const jitter = (amount: number) => (rng.uniform() * 2 - 1) * amount;
  const place = (a: ShapeAttributes, fx: number, fy: number): PlacedShape => {
    const [lo, hi] = EXTENT[a.size];
    const base = SHAPE_COLOURS[a.colour];
    const rgb = base.map((v) => Math.max(0, Math.min(255, v + Math.round(jitter(COLOUR_JITTER)))));
    return {
      kind: a.kind,
      rgb: rgb as unknown as [number, number, number],
      cx: fx * size,
      cy: fy * size,
      extent: (lo + rng.uniform() * (hi - lo)) * size,
    };
  };
  if ("position" in scene) {
    const [ax, ay] = ANCHOR[scene.position];
    return [place(scene.shapes[0], ax + jitter(POSITION_JITTER), ay + jitter(POSITION_JITTER))];
  }
  // The subject (first shape) sits on the side its relation names; the other opposite.
  const sign = scene.relation === "left of" || scene.relation === "above" ? -1 : 1;
  const horizontal = scene.relation === "left of" || scene.relation === "right of";
  const across = 0.5 + jitter(PAIR_JITTER_ACROSS);
  const acrossOther = 0.5 + jitter(PAIR_JITTER_ACROSS);
  const along1 = 0.5 + sign * PAIR_OFFSET + jitter(PAIR_JITTER_ALONG);
  const along2 = 0.5 - sign * PAIR_OFFSET + jitter(PAIR_JITTER_ALONG);
  const [s1, s2] = scene.shapes;
  return horizontal
    ? [place(s1, along1, across), place(s2, along2, acrossOther)]
    : [place(s1, across, along1), place(s2, acrossOther, along2)];
}

/** Returns the labels recording every attribute of the scene. */
export function shapeSceneLabels(scene: ShapeScene): Labels {
  const [a, b] = scene.shapes;
  const labels: Labels = {
    shapes: scene.shapes.length,
    kind: a.kind,
    colour: a.colour,
    size: a.size,
  };
  if ("position" in scene) labels.position = scene.position;
  else {
    labels.relation = scene.relation;
    labels.kind2 = b!.kind;
    labels.colour2 = b!.colour;
    labels.size2 = b!.size;
  }
  return labels;
}

const POSITION_PHRASE: Record<ShapePosition, string> = {
  centre: "",
  left: " on the left",
  right: " on the right",
  top: " at the top",
  bottom: " at the bottom",
};
const RELATION_PHRASE: Record<ShapeRelation, string> = {
  "left of": "to the left of",
  "right of": "to the right of",
  above: "above",
  below: "below",
};

/**
 * Returns the caption of a scene. One shape: size, colour, kind and position ("a small red
 * circle on the left"; the centre is left unsaid). Two shapes: colour, kind and relation
 * ("a red circle above a blue square"); sizes stay in the labels to keep captions short.
 */
export function shapeSceneCaption(scene: ShapeScene): string {
  const [a, b] = scene.shapes;
  if ("position" in scene)
    return `a ${a.size} ${a.colour} ${a.kind}${POSITION_PHRASE[scene.position]}`;
  const subject = `${article(a.colour)} ${a.colour} ${a.kind}`;
  return `${subject} ${RELATION_PHRASE[scene.relation]} ${article(b!.colour)} ${b!.colour} ${b!.kind}`;
}

/** Returns "an" before a vowel sound ("an orange"), else "a". */
function article(word: string): string {
  return /^[aeiou]/.test(word) ? "an" : "a";
}

/**
 * Returns the attributes a shapes caption states (the inverse of `shapeSceneCaption`,
 * without the sizes of two-shape captions), or null if the caption is not in its grammar.
 * Lets an evaluator score images generated from a typed prompt.
 */
export function parseShapeCaption(caption: string): Labels | null {
  const kinds = SHAPE_KINDS.join("|");
  const colours = Object.keys(SHAPE_COLOURS).join("|");
  const text = caption.trim().toLowerCase();
  const one = new RegExp(
    `^an? (small|large) (${colours}) (${kinds})( on the left| on the right| at the top| at the bottom)?$`,
  ).exec(text);
  if (one) {
    const phrase = one[4] ?? "";
    const position = SHAPE_POSITIONS.find((p) => POSITION_PHRASE[p] === phrase)!;
    return { shapes: 1, kind: one[3]!, colour: one[2]!, size: one[1]!, position };
  }
  const two = new RegExp(
    `^an? (${colours}) (${kinds}) (to the left of|to the right of|above|below) an? (${colours}) (${kinds})$`,
  ).exec(text);
  if (two) {
    const relation = SHAPE_RELATIONS.find((r) => RELATION_PHRASE[r] === two[3])!;
    return {
      shapes: 2,
      kind: two[2]!,
      colour: two[1]!,
      relation,
      kind2: two[5]!,
      colour2: two[4]!,
    };
  }
  return null;
}

/** Returns the example (image, caption, labels) generated from one 32-bit seed. */
export function generateShapeExample(seed: number, config: ShapesConfig, size: number): Example {
  const rng = new Rng(seed);
  const scene = sampleShapeScene(rng, config);
  const image: Image = renderShapes(size, placeShapeScene(rng, scene, size));
  return { image, caption: shapeSceneCaption(scene), labels: shapeSceneLabels(scene) };
}

/** Returns the `shapes` dataset; examples are generated on each `get`, nothing is stored. */
export function shapesDataset(options: ShapesOptions = {}): ImageTextDataset {
  const name = "shapes";
  const imageSize = checkIntOption(name, "imageSize", options.imageSize ?? 32, 16, 1024);
  const seed = checkIntOption(name, "seed", options.seed ?? 0, 0, 0xffffffff);
  const difficulty = options.difficulty ?? "medium";
  if (!isShapesDifficulty(difficulty)) {
    throw new Error(`${name}: unknown difficulty '${difficulty}' (expected easy, medium or hard)`);
  }
  const config = SHAPES_DIFFICULTY[difficulty];
  const sizes: Record<SplitName, number> = {
    train: checkIntOption(name, "trainSize", options.trainSize ?? 50000, 1),
    test: checkIntOption(name, "testSize", options.testSize ?? 5000, 1),
  };
  return {
    name,
    channels: 3,
    imageSize,
    licence: "generated by this project (MIT)",
    split(splitName: SplitName): DatasetSplit {
      const split = checkSplitName(name, splitName);
      const size = sizes[split];
      return {
        size,
        get: (i) =>
          generateShapeExample(
            exampleSeed(seed, split, checkIndex(name, i, size)),
            config,
            imageSize,
          ),
      };
    },
  };
}
