/**
 * The common shape of every dataset: image–caption datasets with train/test splits read by
 * index, and plain-text corpora with a held-out split.
 */
import type { Image } from "../image.js";

export type SplitName = "train" | "test";
export type Labels = Record<string, string | number>;

/** One image with its caption and the attributes the caption was made from. */
export interface Example {
  image: Image;
  caption: string;
  labels: Labels;
}

/** A split read by index; `get` is synchronous and deterministic. */
export interface DatasetSplit {
  readonly size: number;
  get(i: number): Example;
}

export interface ImageTextDataset {
  readonly name: string;
  readonly channels: 1 | 3;
  readonly imageSize: number;
  /** Licence of the data (and of the package shipping it, when different). */
  readonly licence: string;
  split(name: SplitName): DatasetSplit;
}

/** A text split: its units (paragraphs or speeches, in corpus order) and all of them joined. */
export interface TextSplit {
  readonly units: readonly string[];
  /** The units joined by a blank line, the form a tokenizer or perplexity run reads. */
  readonly text: string;
}

export interface TextCorpus {
  readonly name: string;
  readonly licence: string;
  split(name: SplitName): TextSplit;
}

/** Raised when a dataset's files are not installed; the message says how to install them. */
export class DatasetUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DatasetUnavailableError";
  }
}

/** Returns `name` if it is a split name, else throws naming the dataset. */
export function checkSplitName(dataset: string, name: string): SplitName {
  if (name !== "train" && name !== "test") {
    throw new Error(`${dataset}: unknown split '${name}' (expected "train" or "test")`);
  }
  return name;
}

/** Returns `i` if it indexes a split of `size` items, else throws naming the dataset. */
export function checkIndex(dataset: string, i: number, size: number): number {
  if (!Number.isInteger(i) || i < 0 || i >= size) {
    throw new Error(`${dataset}: index ${i} out of range [0, ${size})`);
  }
  return i;
}

/** Returns `value`, or throws if it is not an integer in [min, max]. */
export function checkIntOption(
  dataset: string,
  name: string,
  value: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${dataset}: ${name} must be an integer in [${min}, ${max}], got ${value}`);
  }
  return value;
}
