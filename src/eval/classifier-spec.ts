/**
 * What an evaluation classifier is: the datasets it exists for, its heads and widths (the
 * spec), the checks a spec read from a file must pass, and the folder name per dataset.
 *
 * Heads: MNIST one head "digit", Fashion-MNIST one head "class", shapes two order-free heads
 * "first" and "second": the sorted "colour kind" pairs of the scene, the second "none" for a
 * single shape, so "every head right" means the same multiset of colour–kind pairs as the
 * caption, the rule of `colourAndKindMatch` in shapes.ts.
 */
import { FASHION_CLASSES } from "../data/datasets/fashion-mnist.js";
import { getDataset } from "../data/datasets/index.js";
import { SHAPES_DIFFICULTY, type ShapesDifficulty } from "../data/datasets/shapes.js";
import type { ImageTextDataset } from "../data/datasets/types.js";

export type { ShapesDifficulty } from "../data/datasets/shapes.js";

/** Datasets a classifier can be built for. */
export const CLASSIFIER_DATASETS = ["shapes", "mnist", "fashion-mnist"] as const;
export type ClassifierDataset = (typeof CLASSIFIER_DATASETS)[number];

export interface ClassifierHead {
  name: string;
  classes: string[];
}

export interface ClassifierSpec {
  dataset: ClassifierDataset;
  /** Shapes only: the difficulty whose colours and kinds the heads cover. */
  difficulty?: ShapesDifficulty;
  imageSize: number;
  channels: 1 | 3;
  heads: ClassifierHead[];
  /** Width of the penultimate (feature) layer. */
  featureDim: number;
  /** Channels of the first convolution (w); the net widens to 2w and 4w. */
  width: number;
}

/** The class of the "second" shapes head for a scene with one shape. */
export const NO_SECOND_SHAPE = "none";
// The widths CLASSIFIER_TRAIN_DEFAULTS were measured with.
const DEFAULT_WIDTH = 16;
const DEFAULT_FEATURE_DIM = 64;

/** Head names per dataset, in order. */
const HEAD_NAMES: Record<ClassifierDataset, readonly string[]> = {
  shapes: ["first", "second"],
  mnist: ["digit"],
  "fashion-mnist": ["class"],
};

/** Returns true when `v` names a dataset a classifier can be built for. */
export function isClassifierDataset(v: unknown): v is ClassifierDataset {
  return typeof v === "string" && (CLASSIFIER_DATASETS as readonly string[]).includes(v);
}

/** Returns `name` as a classifier dataset, or throws naming `where` and the supported names. */
export function checkDatasetName(name: string, where: string): ClassifierDataset {
  if (!isClassifierDataset(name)) {
    throw new Error(
      `${where}: no evaluation classifier for dataset '${name}' (supported: ${CLASSIFIER_DATASETS.join(", ")})`,
    );
  }
  return name;
}

/** Returns the "colour kind" pairs of a shapes difficulty, sorted. */
export function shapePairClasses(difficulty: ShapesDifficulty): string[] {
  const cfg = SHAPES_DIFFICULTY[difficulty];
  if (!cfg)
    throw new Error(`unknown shapes difficulty '${difficulty}' (expected easy, medium or hard)`);
  const pairs: string[] = [];
  for (const c of cfg.colours) for (const k of cfg.kinds) pairs.push(`${c} ${k}`);
  return pairs.sort();
}

/** Returns the spec of the classifier for a dataset name (heads, size, channels, widths). */
export function classifierSpecForName(
  name: string,
  opts: { difficulty?: ShapesDifficulty; imageSize?: number; channels?: 1 | 3 } = {},
): ClassifierSpec {
  const dataset = checkDatasetName(name, "classifierSpecFor");
  const base = {
    imageSize: opts.imageSize ?? 32,
    featureDim: DEFAULT_FEATURE_DIM,
    width: DEFAULT_WIDTH,
  };
  switch (dataset) {
    case "shapes": {
      const difficulty = opts.difficulty ?? "medium";
      const pairs = shapePairClasses(difficulty);
      return {
        dataset,
        difficulty,
        channels: opts.channels ?? 3,
        heads: [
          { name: "first", classes: pairs },
          { name: "second", classes: [...pairs, NO_SECOND_SHAPE] },
        ],
        ...base,
      };
    }
    case "mnist":
      return {
        dataset,
        channels: opts.channels ?? 1,
        heads: [{ name: "digit", classes: Array.from({ length: 10 }, (_, i) => String(i)) }],
        ...base,
      };
    case "fashion-mnist":
      return {
        dataset,
        channels: opts.channels ?? 1,
        heads: [{ name: "class", classes: [...FASHION_CLASSES] }],
        ...base,
      };
  }
}

/**
 * Returns the classifier spec for a dataset (its name, image size and channels); `difficulty`
 * is the shapes level (default "medium", the dataset's own default). Throws for datasets
 * without class labels a classifier could learn (emoji) and for unknown names.
 */
export function classifierSpecFor(
  dataset: ImageTextDataset,
  difficulty?: ShapesDifficulty,
): ClassifierSpec {
  return classifierSpecForName(dataset.name, {
    ...(difficulty ? { difficulty } : {}),
    imageSize: dataset.imageSize,
    channels: dataset.channels,
  });
}

/** Returns the spec unchanged if it is well formed, else throws naming `where` and the field. */
export function checkClassifierSpec(spec: unknown, where: string): ClassifierSpec {
  const fail = (msg: string): never => {
    throw new Error(`${where}: ${msg}`);
  };
  if (typeof spec !== "object" || spec === null || Array.isArray(spec))
    fail("spec must be a JSON object");
  const s = spec as Record<string, unknown>;
  if (!isClassifierDataset(s.dataset))
    fail(
      `spec.dataset must be one of ${CLASSIFIER_DATASETS.join(", ")}, got ${JSON.stringify(s.dataset)}`,
    );
  if (
    s.difficulty !== undefined &&
    !(typeof s.difficulty === "string" && s.difficulty in SHAPES_DIFFICULTY)
  )
    fail(`spec.difficulty must be easy, medium or hard, got ${JSON.stringify(s.difficulty)}`);
  for (const key of ["imageSize", "featureDim", "width"]) {
    const v = s[key];
    if (!Number.isInteger(v) || (v as number) < 1)
      fail(`spec.${key} must be a positive integer, got ${JSON.stringify(v)}`);
  }
  if ((s.imageSize as number) < 8) fail(`spec.imageSize must be at least 8, got ${s.imageSize}`);
  if (s.channels !== 1 && s.channels !== 3)
    fail(`spec.channels must be 1 or 3, got ${JSON.stringify(s.channels)}`);
  if (!Array.isArray(s.heads) || s.heads.length === 0) fail("spec.heads must be a non-empty array");
  (s.heads as unknown[]).forEach((h, i) => {
    const head = h as Record<string, unknown> | null;
    if (
      typeof head !== "object" ||
      head === null ||
      typeof head.name !== "string" ||
      head.name === ""
    )
      fail(`spec.heads[${i}].name must be a non-empty string`);
    const classes = head!.classes;
    if (
      !Array.isArray(classes) ||
      classes.length < 2 ||
      !classes.every((c) => typeof c === "string") ||
      new Set(classes).size !== classes.length
    )
      fail(`spec.heads[${i}].classes must be at least 2 distinct strings`);
  });
  const names = (s.heads as ClassifierHead[]).map((h) => h.name).join(",");
  const want = HEAD_NAMES[s.dataset as ClassifierDataset].join(",");
  if (names !== want)
    fail(`spec.heads of a ${s.dataset} classifier must be named [${want}], got [${names}]`);
  if (
    s.dataset === "shapes" &&
    !(s.heads as ClassifierHead[])[1]!.classes.includes(NO_SECOND_SHAPE)
  )
    fail(`spec.heads[1].classes must include "${NO_SECOND_SHAPE}"`);
  return s as unknown as ClassifierSpec;
}

/** Returns the folder name of a dataset's classifier: "mnist", "fashion-mnist", "shapes-easy". */
export function classifierDirName(dataset: string, difficulty?: string): string {
  const name = checkDatasetName(dataset, "classifierDirName");
  if (name !== "shapes") return name;
  const d = difficulty ?? "medium";
  if (!(d in SHAPES_DIFFICULTY))
    throw new Error(
      `classifierDirName: unknown shapes difficulty '${d}' (expected easy, medium or hard)`,
    );
  return `shapes-${d}`;
}

/** Returns the dataset a spec was made for (its name, difficulty and image size). */
export async function datasetForSpec(spec: ClassifierSpec): Promise<ImageTextDataset> {
  const ds = await getDataset(spec.dataset, {
    imageSize: spec.imageSize,
    ...(spec.difficulty ? { difficulty: spec.difficulty } : {}),
  });
  if (ds.channels !== spec.channels)
    throw new Error(
      `${spec.dataset} has ${ds.channels}-channel images, the classifier reads ${spec.channels}`,
    );
  return ds;
}
