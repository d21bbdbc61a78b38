/**
 * Every metric of a trained model in one call, as `transfusion eval` and the experiments report
 * them: bits per byte on held-out text; for images generated from held-out captions, the
 * fraction an evaluation classifier judges to match their caption and the FID on its features
 * against held-out real images (with the real-vs-real FID of two disjoint real sets of the same
 * size as the floor); and the accuracy of captions generated for held-out images.
 */

import { join } from "node:path";
import { getTextCorpus, parseShapeCaption } from "../data/datasets/index.js";
import { looksLikeNoise, scoreShapeImage } from "../data/datasets/shapes-checker.js";
import type { Example, ImageTextDataset } from "../data/datasets/types.js";
import { writeImageGrid } from "../data/grid.js";
import type { Image } from "../data/image.js";
import {
  DEFAULT_IMAGE_OPTIONS,
  type ImageOptions,
  type TransfusionPipeline,
} from "../generate/pipeline.js";
import { onHost } from "../tensor/backends/index.js";
import type { EvalClassifier } from "./classifier.js";
import { captionLoss, heldOutImageLoss } from "./held-out-loss.js";
import { fid } from "./metrics.js";
import { bitsPerByte } from "./perplexity.js";
import { colourAndKindMatch, sameScene } from "./shapes.js";

export interface EvaluateOptions {
  /** Held-out captions turned into images, and held-out images captioned. */
  count: number;
  /** How images are drawn (defaults: DEFAULT_IMAGE_OPTIONS). */
  image?: Partial<ImageOptions>;
  /** Images generated or captioned per batch. */
  batch?: number;
  /** Held-out text for bits per byte (null: skip). */
  textCorpus: string | null;
  /** UTF-8 bytes of held-out text scored (default 50,000). */
  textBytes?: number;
  /** The dataset's evaluation classifier (null: no generation accuracy or FID). */
  classifier: EvalClassifier | null;
  /** Skip directions: generation, captioning, text, the held-out image loss. */
  skip?: Partial<Record<"generation" | "captions" | "text" | "imageLoss", boolean>>;
  onProgress?: (what: "images" | "captions" | "text", done: number, total: number) => void;
}

export interface GeneratedSample {
  caption: string;
  image: Image;
  ok: boolean;
}

export interface CaptionSample {
  image: Image;
  truth: string;
  generated: string;
  ok: boolean;
}

export interface EvaluateResult {
  bitsPerByte: number | null;
  perplexity: number | null;
  /** Generated images the classifier judges to match their caption (all heads right). */
  generationAccuracy: number | null;
  /** Fréchet distance on classifier features: generated vs held-out real images. */
  fid: number | null;
  /** The same distance between two disjoint held-out real sets of the same size. */
  fidRealFloor: number | null;
  /** Generated captions that name the right label (shapes: colour and kind of every shape). */
  captionAccuracy: number | null;
  /** Generated captions equal to the true caption, word for word. */
  captionExact: number | null;
  /**
   * Generated captions that state every attribute of the true one (shapes: `sameScene`, so a
   * pair of shapes may be named in either order; other data: word for word, as captionExact).
   */
  captionAllAttributes: number | null;
  /**
   * Mean cross-entropy (nats per token, end of document included) of the true caption after
   * the clean image: a captioning measure that still moves when accuracy is at its ceiling.
   */
  captionLoss: number | null;
  /**
   * The held-out image loss of the evaluated weights (see `heldOutImageLoss`): noise-prediction
   * MSE for Transfusion, nats per code for the discrete-token model.
   */
  imageLoss: number | null;
  /**
   * Shapes only: generated images that look like coloured noise rather than a scene
   * (`looksLikeNoise`): samples that diverged, which the accuracy would count only as misses.
   */
  noiseImages: number | null;
  /** Shapes only: generated images passing the pixel-space attribute checker (colour and kind). */
  checkerAccuracy: number | null;
  /**
   * Shapes only: … and also right in count and in every other attribute the caption states
   * (size and position of one shape, the relation of two; a pair's caption names no sizes).
   */
  checkerAllAttributes: number | null;
  settings: {
    dataset: string;
    count: number;
    image: ImageOptions;
    textCorpus: string | null;
    textBytes: number;
    seqLen: number | null;
    classifier: string | null;
  };
  generated: GeneratedSample[];
  captions: CaptionSample[];
}

/** Returns true when a generated caption names the example's label (dataset-aware). */
export function captionMatches(dataset: string, generated: string, ex: Example): boolean {
  if (dataset === "shapes") return colourAndKindMatch(ex.labels, parseShapeCaption(generated));
  return generated.trim().toLowerCase() === ex.caption.trim().toLowerCase();
}

/** Returns the held-out examples [from, from + n) of a dataset's test split. */
function heldOut(dataset: ImageTextDataset, from: number, n: number): Example[] {
  const test = dataset.split("test");
  if (from + n > test.size) {
    throw new Error(
      `${dataset.name}: ${from + n} held-out examples needed, the test split has ${test.size}`,
    );
  }
  return Array.from({ length: n }, (_, i) => test.get(from + i));
}

/** Returns every metric of `pipeline` on `dataset`'s held-out split and held-out text. */
export async function evaluatePipeline(
  pipeline: TransfusionPipeline,
  dataset: ImageTextDataset,
  opts: EvaluateOptions,
): Promise<EvaluateResult> {
  const n = opts.count;
  const clf = opts.classifier;
  // A covariance for FID needs two samples; scoring alone needs one.
  const least = clf ? 2 : 1;
  if (!Number.isInteger(n) || n < least) {
    throw new Error(`evaluate: count must be ≥ ${least}, got ${n}`);
  }
  const batch = opts.batch ?? 25;
  const image: ImageOptions = { ...DEFAULT_IMAGE_OPTIONS, ...opts.image };
  const textBytes = opts.textBytes ?? 50_000;
  const skip = opts.skip ?? {};
  const isShapes = dataset.name === "shapes";
  const examples = heldOut(dataset, 0, n);
  // Shapes are judged on what each caption states, never on what the scene happened to hold:
  // a pair's caption names no sizes, so none is asked of its drawing or of its caption.
  const stated = examples.map((e) => (isShapes ? parseShapeCaption(e.caption) : null));

  const result: EvaluateResult = {
    bitsPerByte: null,
    perplexity: null,
    generationAccuracy: null,
    fid: null,
    fidRealFloor: null,
    captionAccuracy: null,
    captionExact: null,
    captionAllAttributes: null,
    captionLoss: null,
    imageLoss: null,
    noiseImages: null,
    checkerAccuracy: null,
    checkerAllAttributes: null,
    settings: {
      dataset: dataset.name,
      count: n,
      image,
      textCorpus: skip.text ? null : opts.textCorpus,
      textBytes,
      seqLen: pipeline.contextLength,
      classifier: clf
        ? clf.spec.dataset + (clf.spec.difficulty ? `-${clf.spec.difficulty}` : "")
        : null,
    },
    generated: [],
    captions: [],
  };

  if (!skip.text && opts.textCorpus) {
    const text = getTextCorpus(opts.textCorpus).split("test").text;
    opts.onProgress?.("text", 0, 1);
    const r = await bitsPerByte(pipeline, text, {
      seqLen: pipeline.contextLength ?? 128,
      maxBytes: textBytes,
    });
    result.bitsPerByte = r.bitsPerByte;
    result.perplexity = r.perplexity;
    opts.onProgress?.("text", 1, 1);
  }

  if (!skip.generation) {
    const images: Image[] = [];
    for (let at = 0; at < n; at += batch) {
      const chunk = examples.slice(at, at + batch);
      const out = await pipeline.textToImage(
        chunk.map((e) => e.caption),
        { ...image, firstSample: at },
      );
      images.push(...out.images);
      opts.onProgress?.("images", Math.min(n, at + batch), n);
    }
    let checked = 0;
    const ok = new Array<boolean>(n).fill(false);
    if (clf) {
      // The classifier runs on the host (its loops read values), whatever the model runs on.
      const gen = onHost(() => clf.predict(images));
      gen.labels.forEach((pred, i) => {
        const want = clf.targets(examples[i]!.labels);
        ok[i] = want.every((t, h) => pred[h] === t);
      });
      result.generationAccuracy = ok.filter(Boolean).length / n;
      // Real sets: A = the examples whose captions were drawn, B = the next n held-out images.
      const realA = onHost(() => clf.predict(examples.map((e) => e.image))).features;
      const realB = onHost(() => clf.predict(heldOut(dataset, n, n).map((e) => e.image))).features;
      const d = clf.spec.featureDim;
      result.fid = fid(gen.features, n, realB, n, d);
      result.fidRealFloor = fid(realA, n, realB, n, d);
    }
    if (isShapes) {
      result.noiseImages = images.filter(looksLikeNoise).length / n;
      let all = 0;
      images.forEach((img, i) => {
        const s = scoreShapeImage(img, stated[i] ?? examples[i]!.labels);
        if (s.colour && s.kind) checked++;
        if (s.all) all++;
        if (!clf) ok[i] = s.colour && s.kind;
      });
      result.checkerAccuracy = checked / n;
      result.checkerAllAttributes = all / n;
    }
    result.generated = images.map((img, i) => ({
      caption: examples[i]!.caption,
      image: img,
      ok: ok[i]!,
    }));
  }

  if (!skip.captions) {
    let right = 0;
    let exact = 0;
    let allAttributes = 0;
    for (let at = 0; at < n; at += batch) {
      const chunk = examples.slice(at, at + batch);
      const texts = await pipeline.caption(chunk.map((e) => e.image));
      texts.forEach((text, i) => {
        const ex = chunk[i]!;
        const ok = captionMatches(dataset.name, text, ex);
        if (ok) right++;
        const same = text.trim().toLowerCase() === ex.caption.trim().toLowerCase();
        if (same) exact++;
        const truth = stated[at + i];
        if (truth ? sameScene(truth, parseShapeCaption(text)) : same) allAttributes++;
        result.captions.push({ image: ex.image, truth: ex.caption, generated: text, ok });
      });
      opts.onProgress?.("captions", Math.min(n, at + batch), n);
    }
    result.captionAccuracy = right / n;
    result.captionExact = exact / n;
    result.captionAllAttributes = allAttributes / n;
    result.captionLoss = await captionLoss(pipeline, examples, batch);
  }

  if (!skip.imageLoss) result.imageLoss = await heldOutImageLoss(pipeline, examples, batch);
  return result;
}

/**
 * Writes what was scored as grids in `dir` — generated.png (each image under its caption, a
 * miss marked "x") and captions.png (each image under the model's caption; a wrong one marked
 * and followed by the truth), at most `shown` of each — and returns their paths.
 */
export async function writeScoredGrids(
  dir: string,
  r: Pick<EvaluateResult, "generated" | "captions">,
  shown = 24,
): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  const generated = r.generated.slice(0, shown);
  if (generated.length > 0) {
    files.generated = join(dir, "generated.png");
    await writeImageGrid(
      files.generated,
      generated.map((g) => g.image),
      { columns: 6, captions: generated.map((g) => `${g.ok ? "" : "x "}${g.caption}`) },
    );
  }
  const captions = r.captions.slice(0, shown);
  if (captions.length > 0) {
    files.captions = join(dir, "captions.png");
    await writeImageGrid(
      files.captions,
      captions.map((c) => c.image),
      {
        columns: 6,
        captions: captions.map((c) => (c.ok ? c.generated : `x ${c.generated} (true: ${c.truth})`)),
      },
    );
  }
  return files;
}
