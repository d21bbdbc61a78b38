/**
 * Sample grids: many small images upscaled side by side, each with its caption underneath,
 * written as one PNG a person can look at to judge a run.
 */
import { CHAR_ADVANCE, drawText, LINE_ADVANCE, wrapText } from "./font.js";
import { checkImage, createImage, type Image, writePng } from "./image.js";

export interface ImageGridOptions {
  /** Images per row; default: enough for a roughly square grid. */
  columns?: number;
  /** One caption per image, wrapped to the cell width under it. */
  captions?: string[];
  /** Integer nearest-neighbour upscale; default makes the largest side about 96 pixels. */
  scale?: number;
  /** Pixels of background around and between cells; default 6. */
  padding?: number;
}

/** Captions longer than this many lines are cut with "..." so one caption can't bloat a row. */
const MAX_CAPTION_LINES = 4;
const BACKGROUND = 255;
const TEXT_COLOUR = [32, 32, 32];
/** Target on-screen size of a cell, so 28-64 px images all end up comfortable to look at. */
const TARGET_CELL_PIXELS = 96;

/** Returns the grid of images (and captions) as one RGB image; see `writeImageGrid`. */
export function renderImageGrid(images: readonly Image[], options: ImageGridOptions = {}): Image {
  if (images.length === 0) throw new Error("image grid: no images given");
  for (let i = 0; i < images.length; i++) checkImage(images[i]!, `image grid: image ${i}`);
  const { captions } = options;
  if (captions !== undefined && captions.length !== images.length) {
    throw new Error(
      `image grid: ${captions.length} captions for ${images.length} images (need one each)`,
    );
  }
  const maxW = Math.max(...images.map((img) => img.width));
  const maxH = Math.max(...images.map((img) => img.height));
  const scale = options.scale ?? Math.max(1, Math.round(TARGET_CELL_PIXELS / Math.max(maxW, maxH)));
  const padding = options.padding ?? 6;
  const columns = options.columns ?? Math.ceil(Math.sqrt(images.length));
  checkPositiveInt("scale", scale);
  checkPositiveInt("columns", columns);
  if (!Number.isInteger(padding) || padding < 0) {
    throw new Error(`image grid: padding must be a non-negative integer, got ${padding}`);
  }
  const cellW = maxW * scale;
  const cellH = maxH * scale;
  // Bigger cells get bigger letters so captions stay in proportion to the images.
  const textScale = cellW >= 200 ? 2 : 1;
  const charsPerLine = Math.max(1, Math.floor((cellW + textScale) / (CHAR_ADVANCE * textScale)));
  const lines = (captions ?? []).map((c) => captionLines(c, charsPerLine));
  const rows = Math.ceil(images.length / columns);
  const lineH = LINE_ADVANCE * textScale;

  // Each grid row is as tall as its longest caption needs.
  const rowCaptionH: number[] = [];
  for (let r = 0; r < rows; r++) {
    const rowLines = lines.slice(r * columns, (r + 1) * columns).map((l) => l.length);
    const n = Math.max(0, ...rowLines);
    rowCaptionH.push(n === 0 ? 0 : 2 * textScale + n * lineH);
  }
  const width = padding + Math.min(columns, images.length) * (cellW + padding);
  const height = padding + rowCaptionH.reduce((sum, h) => sum + cellH + h + padding, 0);
  const out = createImage(width, height, 3);
  out.data.fill(BACKGROUND);

  let top = padding;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < columns; c++) {
      const i = r * columns + c;
      const img = images[i];
      if (!img) break;
      const left = padding + c * (cellW + padding);
      const x0 = left + ((cellW - img.width * scale) >> 1);
      const y0 = top + ((cellH - img.height * scale) >> 1);
      blitScaled(out, img, x0, y0, scale);
      const capTop = top + cellH + 2 * textScale;
      (lines[i] ?? []).forEach((line, k) => {
        drawText(out, line, left, capTop + k * lineH, TEXT_COLOUR, textScale);
      });
    }
    top += cellH + rowCaptionH[r]! + padding;
  }
  return out;
}

/** Returns once the grid PNG is written to `path` (atomically). */
export async function writeImageGrid(
  path: string,
  images: readonly Image[],
  options: ImageGridOptions = {},
): Promise<void> {
  await writePng(path, renderImageGrid(images, options));
}

/** Returns the caption's wrapped lines, cut to MAX_CAPTION_LINES with a trailing "...". */
function captionLines(caption: string, charsPerLine: number): string[] {
  const lines = wrapText(caption, charsPerLine);
  if (lines.length <= MAX_CAPTION_LINES) return lines;
  const kept = lines.slice(0, MAX_CAPTION_LINES);
  const last = kept[MAX_CAPTION_LINES - 1]!;
  kept[MAX_CAPTION_LINES - 1] = `${last.slice(0, Math.max(0, charsPerLine - 3))}...`;
  return kept;
}

/** Returns `out` after copying `img` into it at (x0, y0), each pixel a scale×scale block. */
function blitScaled(out: Image, img: Image, x0: number, y0: number, scale: number): Image {
  const grey = img.channels === 1;
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++) {
      const src = (y * img.width + x) * img.channels;
      const r = img.data[src]!;
      const g = grey ? r : img.data[src + 1]!;
      const b = grey ? r : img.data[src + 2]!;
      for (let sy = 0; sy < scale; sy++) {
        let dst = ((y0 + y * scale + sy) * out.width + x0 + x * scale) * 3;
        for (let sx = 0; sx < scale; sx++) {
          out.data[dst++] = r;
          out.data[dst++] = g;
          out.data[dst++] = b;
        }
      }
    }
  }
  return out;
}

function checkPositiveInt(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`image grid: ${name} must be a positive integer, got ${value}`);
  }
}
