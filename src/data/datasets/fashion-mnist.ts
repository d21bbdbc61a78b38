/**
 * `fashion-mnist`: Zalando's 28×28 grey photos of clothing in 10 classes, 60,000 train and
 * 10,000 test, from the Debian package `dataset-fashion-mnist` (the canonical gzipped IDX
 * files; the npm `fashion-mnist` package differs from them). Licence: MIT.
 */
import { idxDataset } from "./idx.js";
import type { ImageTextDataset } from "./types.js";

export const FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist";

/** Class names as published with the dataset, by label. */
export const FASHION_CLASSES = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
] as const;

/** Caption per class, in plain English ("trousers" not "a trouser"). */
const FASHION_CAPTIONS = [
  "a photo of a t-shirt",
  "a photo of trousers",
  "a photo of a pullover",
  "a photo of a dress",
  "a photo of a coat",
  "a photo of a sandal",
  "a photo of a shirt",
  "a photo of a sneaker",
  "a photo of a bag",
  "a photo of an ankle boot",
] as const;

export interface FashionMnistOptions {
  /** 28 (native) or larger, padding with black. */
  imageSize?: number;
  /** Folder of the four .gz files; default where the Debian package installs them. */
  dir?: string;
}

/**
 * Returns the Fashion-MNIST dataset; labels are `{ class, name }`. Reading a split throws a
 * `DatasetUnavailableError` naming the apt package when the files are missing.
 */
export function fashionMnistDataset(options: FashionMnistOptions = {}): ImageTextDataset {
  return idxDataset(
    {
      name: "fashion-mnist",
      licence: "MIT (Zalando Research)",
      dir: options.dir ?? FASHION_MNIST_DIR,
      files: {
        train: { images: "train-images-idx3-ubyte.gz", labels: "train-labels-idx1-ubyte.gz" },
        test: { images: "t10k-images-idx3-ubyte.gz", labels: "t10k-labels-idx1-ubyte.gz" },
      },
      gzipped: true,
      installHint: "Install it with: apt-get install dataset-fashion-mnist",
      classes: 10,
      describe: (label) => ({
        caption: FASHION_CAPTIONS[label]!,
        labels: { class: label, name: FASHION_CLASSES[label]! },
      }),
    },
    options.imageSize,
  );
}
