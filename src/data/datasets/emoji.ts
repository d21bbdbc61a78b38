/**
 * `emoji`: the 1,911 base emoji of Google's Noto set (no skin-tone variants) from the npm
 * package `emoji-datasource-google`, 64×64 PNGs composited on white and resized (default
 * 32×32), captioned with the emoji's name in lowercase words ("grinning face").
 * Licences: images Apache-2.0 (Google Noto Emoji); package and emoji.json MIT (Cal Henderson).
 *
 * Decoding ~2,000 PNGs takes seconds, so pixels are decoded once per image size and kept in
 * memory, and also in a disk cache: `<cacheDir>/emoji-google-<version>-<size>px-<count>.bin`,
 * where cacheDir defaults to `emoji/` in the package's cache folder (`cacheRoot()`:
 * $TRANSFUSION_CACHE, else $XDG_CACHE_HOME/transfusion, else ~/.cache/transfusion). The cache
 * is plain pixels; a file of the wrong length is rebuilt.
 */
import { existsSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { cacheRoot } from "../cache.js";
import { decodeImage, writeFileAtomic } from "../image.js";
import {
  checkIndex,
  checkIntOption,
  checkSplitName,
  type DatasetSplit,
  type ImageTextDataset,
  type SplitName,
} from "./types.js";

export interface EmojiOptions {
  /** Side in pixels after resizing (default 32). */
  imageSize?: number;
  /** Folder of the decoded-pixel cache; null keeps the cache in memory only. */
  cacheDir?: string | null;
}

/** One emoji as listed in the package's emoji.json. */
export interface EmojiEntry {
  name: string;
  shortName: string;
  category: string;
  file: string;
  caption: string;
}

/** One emoji in ten goes to the test split, chosen by a hash of its short name. */
const TEST_EVERY = 10;
const DECODE_CONCURRENCY = 16;

const pixelCache = new Map<string, Promise<Uint8Array>>();

/** Returns the package folder, its version and the emoji with a Google image, in sort order. */
export function emojiCatalogue(): { dir: string; version: string; entries: EmojiEntry[] } {
  const require = createRequire(import.meta.url);
  const dir = dirname(require.resolve("emoji-datasource-google/package.json"));
  const version = String(JSON.parse(readFileSync(join(dir, "package.json"), "utf8")).version);
  const raw = JSON.parse(readFileSync(join(dir, "emoji.json"), "utf8")) as Array<{
    name: string;
    short_name: string;
    category: string;
    image: string;
    sort_order: number;
    has_img_google: boolean;
  }>;
  const entries = raw
    .filter((e) => e.has_img_google && existsSync(join(dir, "img/google/64", e.image)))
    .sort((a, b) => a.sort_order - b.sort_order)
    .map((e) => ({
      name: e.name,
      shortName: e.short_name,
      category: e.category,
      file: e.image,
      caption: emojiCaption(e.name),
    }));
  return { dir, version, entries };
}

/** Returns the emoji name as a caption: lowercase words, "&" spelled out, punctuation dropped. */
export function emojiCaption(name: string): string {
  return name
    .toLowerCase()
    .replace(/&/g, " and ")
    .replace(/\u2019/g, "'")
    .replace(/[:,()]/g, " ")
    .replace(/\s+/g, " ")
    .trim();
}

/** Returns which split an emoji belongs to: a stable hash of its short name (FNV-1a). */
export function emojiSplitOf(shortName: string): SplitName {
  let h = 0x811c9dc5;
  for (let i = 0; i < shortName.length; i++) {
    h = Math.imul(h ^ shortName.charCodeAt(i), 0x01000193) >>> 0;
  }
  return h % TEST_EVERY === 0 ? "test" : "train";
}

/** Returns the default folder for decoded-pixel caches. */
export function defaultCacheDir(): string {
  return join(cacheRoot(), "emoji");
}

/**
 * Returns the `emoji` dataset once its pixels are decoded (or read from the cache). Only
 * the first call per image size pays for decoding.
 */
export async function emojiDataset(options: EmojiOptions = {}): Promise<ImageTextDataset> {
  const name = "emoji";
  const imageSize = checkIntOption(name, "imageSize", options.imageSize ?? 32, 8, 256);
  const cacheDir = options.cacheDir === undefined ? defaultCacheDir() : options.cacheDir;
  const { dir, version, entries } = emojiCatalogue();
  const pixels = await emojiPixels(dir, version, entries, imageSize, cacheDir);
  const bytesPerImage = imageSize * imageSize * 3;
  const indices: Record<SplitName, number[]> = { train: [], test: [] };
  for (let i = 0; i < entries.length; i++) indices[emojiSplitOf(entries[i]!.shortName)].push(i);
  return {
    name,
    channels: 3,
    imageSize,
    licence: "images Apache-2.0 (Google Noto Emoji); emoji-datasource-google package MIT",
    split(splitName: SplitName): DatasetSplit {
      const list = indices[checkSplitName(name, splitName)];
      return {
        size: list.length,
        get(i: number) {
          const k = list[checkIndex(name, i, list.length)]!;
          const e = entries[k]!;
          const data = pixels.slice(k * bytesPerImage, (k + 1) * bytesPerImage);
          return {
            image: { width: imageSize, height: imageSize, channels: 3, data },
            caption: e.caption,
            labels: { name: e.name, shortName: e.shortName, category: e.category },
          };
        },
      };
    },
  };
}

/** Returns all emoji pixels (entry after entry, HWC RGB) from memory, disk cache or PNGs. */
function emojiPixels(
  dir: string,
  version: string,
  entries: readonly EmojiEntry[],
  size: number,
  cacheDir: string | null,
): Promise<Uint8Array> {
  const fileName = `emoji-google-${version}-${size}px-${entries.length}.bin`;
  const key = `${cacheDir ?? "(memory)"}/${fileName}`;
  let pending = pixelCache.get(key);
  if (!pending) {
    pending = loadOrDecode(dir, entries, size, cacheDir && join(cacheDir, fileName));
    pixelCache.set(key, pending);
    pending.catch(() => pixelCache.delete(key)); // a failure should not stick for the process
  }
  return pending;
}

async function loadOrDecode(
  dir: string,
  entries: readonly EmojiEntry[],
  size: number,
  cachePath: string | null,
): Promise<Uint8Array> {
  const bytesPerImage = size * size * 3;
  const total = entries.length * bytesPerImage;
  if (cachePath) {
    try {
      const cached = await readFile(cachePath);
      if (cached.length === total) return new Uint8Array(cached);
    } catch {
      // No cache yet (or unreadable): decode below and write it.
    }
  }
  const pixels = new Uint8Array(total);
  let next = 0;
  const worker = async () => {
    while (next < entries.length) {
      const k = next++;
      const path = join(dir, "img/google/64", entries[k]!.file);
      const img = await decodeImage(await readFile(path), path, { channels: 3, size });
      pixels.set(img.data, k * bytesPerImage);
    }
  };
  await Promise.all(Array.from({ length: DECODE_CONCURRENCY }, worker));
  if (cachePath) {
    // A cache that cannot be written (read-only checkout) only costs time next run.
    await writeFileAtomic(cachePath, pixels).catch(() => {});
  }
  return pixels;
}
