/**
 * Scoring a model on held-out `shapes` data without any learned network: generated images are
 * checked in pixel space against the attributes of their caption, and generated captions are
 * parsed back into attributes and compared with the image's labels.
 */
import { parseShapeCaption } from "../data/datasets/shapes.js";
import { scoreShapeImage } from "../data/datasets/shapes-checker.js";
import type { ImageTextDataset, Labels } from "../data/datasets/types.js";
import type { Image } from "../data/image.js";
import type { ImageOptions, TransfusionPipeline } from "../generate/pipeline.js";

export interface ShapesEvalOptions {
  /** Held-out examples scored in each direction. */
  count: number;
  image: Partial<ImageOptions>;
  /** Images generated per batch (memory and progress granularity). */
  batch: number;
  onProgress?: (done: number, total: number, what: "images" | "captions") => void;
}

export interface ShapesEvalResult {
  /** Generated images whose every requested shape has the right colour and kind. */
  generationAccuracy: number;
  /** … and also the right count, size and position/relation. */
  generationAllAttributes: number;
  /** Generated captions naming the right colour and kind of every shape. */
  captionAccuracy: number;
  /** Generated captions equal to the true caption. */
  captionExact: number;
  generated: Array<{ caption: string; image: Image; ok: boolean }>;
  captions: Array<{ image: Image; truth: string; generated: string; ok: boolean }>;
}

/** Returns true when every shape in `want` appears in `got` with the same colour and kind. */
export function colourAndKindMatch(want: Labels, got: Labels | null): boolean {
  if (!got || got.shapes !== want.shapes) return false;
  const pairs = (l: Labels) =>
    [`${l.colour} ${l.kind}`, ...(l.shapes === 2 ? [`${l.colour2} ${l.kind2}`] : [])]
      .sort()
      .join("|");
  return pairs(want) === pairs(got);
}

/** Returns generation and captioning accuracy of `pipeline` on held-out shapes. */
export function evaluateShapes(
  pipeline: TransfusionPipeline,
  dataset: ImageTextDataset,
  opts: ShapesEvalOptions,
): ShapesEvalResult {
  const test = dataset.split("test");
  const n = Math.min(opts.count, test.size);
  const examples = Array.from({ length: n }, (_, i) => test.get(i));
  const generated: ShapesEvalResult["generated"] = [];
  let all = 0;
  for (let at = 0; at < n; at += opts.batch) {
    const chunk = examples.slice(at, at + opts.batch);
    const { images } = pipeline.textToImage(
      chunk.map((e) => e.caption),
      { ...opts.image, firstSample: at },
    );
    images.forEach((img, i) => {
      const score = scoreShapeImage(img, chunk[i]!.labels);
      if (score.all) all++;
      generated.push({ caption: chunk[i]!.caption, image: img, ok: score.colour && score.kind });
    });
    opts.onProgress?.(Math.min(n, at + opts.batch), n, "images");
  }
  const captions: ShapesEvalResult["captions"] = [];
  let exact = 0;
  for (let at = 0; at < n; at += opts.batch) {
    const chunk = examples.slice(at, at + opts.batch);
    const texts = pipeline.caption(chunk.map((e) => e.image));
    texts.forEach((text, i) => {
      const ex = chunk[i]!;
      if (text.trim().toLowerCase() === ex.caption.trim().toLowerCase()) exact++;
      captions.push({
        image: ex.image,
        truth: ex.caption,
        generated: text,
        ok: colourAndKindMatch(ex.labels, parseShapeCaption(text)),
      });
    });
    opts.onProgress?.(Math.min(n, at + opts.batch), n, "captions");
  }
  return {
    generationAccuracy: generated.filter((g) => g.ok).length / Math.max(1, n),
    generationAllAttributes: all / Math.max(1, n),
    captionAccuracy: captions.filter((c) => c.ok).length / Math.max(1, n),
    captionExact: exact / Math.max(1, n),
    generated,
    captions,
  };
}
