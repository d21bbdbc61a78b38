/**
 * The dataset registry: image–caption datasets and text corpora by name, so the CLI and the
 * library pick data with one string.
 */
import { type EmojiOptions, emojiDataset } from "./emoji.js";
import { type FashionMnistOptions, fashionMnistDataset } from "./fashion-mnist.js";
import { type MnistOptions, mnistDataset } from "./mnist.js";
import { mobyDickCorpus } from "./moby-dick.js";
import { type ShapesOptions, shapesDataset } from "./shapes.js";
import { sotuCorpus } from "./sotu.js";
import type { ImageTextDataset, TextCorpus } from "./types.js";

export { isShapesDifficulty, parseShapeCaption, type ShapesDifficulty } from "./shapes.js";
export {
  type DetectedShape,
  type ShapeDetection,
  type ShapeScore,
  scoreShapeImage,
  shapeAttributesFromPixels,
} from "./shapes-checker.js";
export {
  type DatasetSplit,
  DatasetUnavailableError,
  type Example,
  type ImageTextDataset,
  type Labels,
  type SplitName,
  type TextCorpus,
  type TextSplit,
} from "./types.js";

export const DATASET_NAMES = ["shapes", "mnist", "fashion-mnist", "emoji"] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];
export const DEFAULT_DATASET: DatasetName = "shapes";

/** Options of every dataset in one bag; each dataset reads the ones that concern it. */
export type DatasetOptions = ShapesOptions & MnistOptions & FashionMnistOptions & EmojiOptions;

/**
 * Returns the named image–caption dataset, ready to read (emoji decodes or loads its cache
 * here; MNIST-style files are read on the first `split`).
 */
export async function getDataset(
  name: string = DEFAULT_DATASET,
  options: DatasetOptions = {},
): Promise<ImageTextDataset> {
  switch (name as DatasetName) {
    case "shapes":
      return shapesDataset(options);
    case "mnist":
      return mnistDataset(options);
    case "fashion-mnist":
      return fashionMnistDataset(options);
    case "emoji":
      return emojiDataset(options);
    default:
      throw new Error(`unknown dataset '${name}' (expected one of: ${DATASET_NAMES.join(", ")})`);
  }
}

export const TEXT_CORPUS_NAMES = ["moby-dick", "sotu"] as const;
export type TextCorpusName = (typeof TEXT_CORPUS_NAMES)[number];

/** Returns the named text corpus; its files are read on the first `split` call. */
export function getTextCorpus(name: string): TextCorpus {
  switch (name as TextCorpusName) {
    case "moby-dick":
      return mobyDickCorpus();
    case "sotu":
      return sotuCorpus();
    default:
      throw new Error(
        `unknown text corpus '${name}' (expected one of: ${TEXT_CORPUS_NAMES.join(", ")})`,
      );
  }
}
