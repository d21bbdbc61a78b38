/**
 * The IDX format of MNIST and Fashion-MNIST (big-endian header, then raw bytes), and the
 * dataset both build on it: 28×28 grey digits or garments with a caption per class.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { createImage, padImage } from "../image.js";
import {
  checkIndex,
  checkIntOption,
  checkSplitName,
  type DatasetSplit,
  DatasetUnavailableError,
  type ImageTextDataset,
  type Labels,
  type SplitName,
} from "./types.js";

const IMAGES_MAGIC = 0x00000803; // unsigned bytes, 3 dimensions
const LABELS_MAGIC = 0x00000801; // unsigned bytes, 1 dimension
const IMAGES_HEADER_BYTES = 16;
const LABELS_HEADER_BYTES = 8;

export interface IdxImages {
  count: number;
  rows: number;
  cols: number;
  /** count × rows × cols bytes, image after image, row-major. */
  pixels: Uint8Array;
}

/** Returns the images in an IDX3 unsigned-byte file's bytes; `source` names it in errors. */
export function parseIdxImages(bytes: Uint8Array, source: string): IdxImages {
  if (bytes.length < IMAGES_HEADER_BYTES) throw new Error(`${source}: too short for an IDX header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0);
  if (magic !== IMAGES_MAGIC) {
    throw new Error(`${source}: not an IDX image file (magic 0x${magic.toString(16)})`);
  }
  const count = view.getUint32(4);
  const rows = view.getUint32(8);
  const cols = view.getUint32(12);
  const expected = IMAGES_HEADER_BYTES + count * rows * cols;
  if (bytes.length !== expected) {
    throw new Error(`${source}: ${bytes.length} bytes, header promises ${expected}`);
  }
  return { count, rows, cols, pixels: bytes.subarray(IMAGES_HEADER_BYTES) };
}

/** Returns the labels in an IDX1 unsigned-byte file's bytes; `source` names it in errors. */
export function parseIdxLabels(bytes: Uint8Array, source: string): Uint8Array {
  if (bytes.length < LABELS_HEADER_BYTES) throw new Error(`${source}: too short for an IDX header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0);
  if (magic !== LABELS_MAGIC) {
    throw new Error(`${source}: not an IDX label file (magic 0x${magic.toString(16)})`);
  }
  const count = view.getUint32(4);
  if (bytes.length !== LABELS_HEADER_BYTES + count) {
    throw new Error(
      `${source}: ${bytes.length} bytes, header promises ${LABELS_HEADER_BYTES + count}`,
    );
  }
  return bytes.subarray(LABELS_HEADER_BYTES);
}

/** Where one IDX dataset's four files are and how to describe its classes. */
export interface IdxSource {
  name: string;
  licence: string;
  dir: string;
  /** File names without the directory, per split. */
  files: Record<SplitName, { images: string; labels: string }>;
  gzipped: boolean;
  /** Sentence telling the user how to get the files, used when any is missing. */
  installHint: string;
  /** Caption and labels of a class index. */
  describe(label: number): { caption: string; labels: Labels };
  classes: number;
}

interface LoadedSplit {
  images: IdxImages;
  labels: Uint8Array;
}

// Parsed files, shared by every dataset object over the same paths (they are read-only).
const loaded = new Map<string, LoadedSplit>();

/** Returns the split's images and labels, reading and checking the files on first use. */
function loadSplit(source: IdxSource, split: SplitName): LoadedSplit {
  const { images: imagesFile, labels: labelsFile } = source.files[split];
  const imagesPath = join(source.dir, imagesFile);
  const labelsPath = join(source.dir, labelsFile);
  const cached = loaded.get(imagesPath);
  if (cached) return cached;
  for (const path of [imagesPath, labelsPath]) {
    if (!existsSync(path)) {
      throw new DatasetUnavailableError(`${source.name}: ${path} not found. ${source.installHint}`);
    }
  }
  const read = (path: string): Uint8Array => {
    const bytes = readFileSync(path);
    if (!source.gzipped) return bytes;
    try {
      return gunzipSync(bytes);
    } catch (err) {
      throw new Error(`${path}: not valid gzip (${(err as Error).message})`);
    }
  };
  const images = parseIdxImages(read(imagesPath), imagesPath);
  const labels = parseIdxLabels(read(labelsPath), labelsPath);
  if (labels.length !== images.count) {
    throw new Error(`${labelsPath}: ${labels.length} labels for ${images.count} images`);
  }
  const bad = labels.findIndex((l) => l >= source.classes);
  if (bad >= 0) throw new Error(`${labelsPath}: label ${labels[bad]} at ${bad} is not a class`);
  const result = { images, labels };
  loaded.set(imagesPath, result);
  return result;
}

/**
 * Returns an image–caption dataset over IDX files, read lazily on the first `split` call.
 * Images are grey; an `imageSize` above the native 28 pads with black (the background).
 */
export function idxDataset(source: IdxSource, imageSize?: number): ImageTextDataset {
  const size = checkIntOption(source.name, "imageSize", imageSize ?? 28, 28, 4096);
  return {
    name: source.name,
    channels: 1,
    imageSize: size,
    licence: source.licence,
    split(splitName: SplitName): DatasetSplit {
      const split = checkSplitName(source.name, splitName);
      const { images, labels } = loadSplit(source, split);
      const { rows, cols, pixels } = images;
      const n = rows * cols;
      return {
        size: images.count,
        get(i: number) {
          checkIndex(source.name, i, images.count);
          const img = createImage(cols, rows, 1);
          img.data.set(pixels.subarray(i * n, (i + 1) * n));
          const { caption, labels: classLabels } = source.describe(labels[i]!);
          return { image: padImage(img, size, 0), caption, labels: { ...classLabels } };
        },
      };
    },
  };
}
