/**
 * The evaluation classifier's network: a small CNN whose heads judge whether an image shows
 * what its caption says and whose penultimate features FID is computed on (see `fid` in
 * metrics.ts; those numbers compare only between runs scored by the same classifier file).
 */
import type { Labels } from "../data/datasets/types.js";
import { checkImage, type Image, imagesToTensor } from "../data/image.js";
import { Conv2d, GroupNorm, groupsFor, Linear } from "../nn/layers.js";
import { Module } from "../nn/module.js";
import { silu } from "../tensor/ops/elementwise.js";
import { reshape } from "../tensor/ops/shape.js";
import { withArena } from "../tensor/pool.js";
import type { Rng } from "../tensor/rng.js";
import { noGrad, type Tensor } from "../tensor/tensor.js";
import {
  type ClassifierSpec,
  checkClassifierSpec,
  classifierDirName,
  NO_SECOND_SHAPE,
} from "./classifier-spec.js";
import { shapePairs } from "./shapes.js";

const PREDICT_BATCH = 256;

/** Returns the spatial side after a 3×3 convolution with padding 1 and the given stride. */
function convOut(side: number, stride: number): number {
  return Math.floor((side - 1) / stride) + 1;
}

/**
 * The CNN: five 3×3 convolutions (w, 2w/2, 2w, 4w/2, 4w/2 channels/stride), each followed by
 * GroupNorm and SiLU, then Linear → featureDim with SiLU (the features), then one Linear per
 * head. At 32×32 the last feature map is 4×4. It has no dropout or batch statistics, so
 * training and inference compute the same function; `predict` runs without a graph.
 *
 * Tensor names: conv{1..5}.{weight,bias}, norm{1..5}.{weight,bias}, features.{weight,bias},
 * heads.<head name>.{weight,bias}.
 */
export class EvalClassifier extends Module {
  readonly spec: ClassifierSpec;
  /** conv[i] and norm[i] are the tensors named conv{i+1} and norm{i+1}. */
  private readonly conv: Conv2d[] = [];
  private readonly norm: GroupNorm[] = [];
  private readonly features: Linear;
  /** heads[h] is the tensor named heads.<spec.heads[h].name>. */
  private readonly heads: Linear[];
  private readonly flatDim: number;
  private readonly classIndex: Array<Map<string, number>>;

  constructor(spec: ClassifierSpec, rng: Rng) {
    super();
    this.spec = checkClassifierSpec(structuredClone(spec), "EvalClassifier");
    const w = spec.width;
    const plan: Array<[number, number, number]> = [
      [spec.channels, w, 1],
      [w, 2 * w, 2],
      [2 * w, 2 * w, 1],
      [2 * w, 4 * w, 2],
      [4 * w, 4 * w, 2],
    ];
    let side = spec.imageSize;
    plan.forEach(([cin, cout, stride], i) => {
      this.conv.push(this.child(`conv${i + 1}`, new Conv2d(cin, cout, 3, rng, stride, 1)));
      this.norm.push(this.child(`norm${i + 1}`, new GroupNorm(groupsFor(cout), cout)));
      side = convOut(side, stride);
    });
    this.flatDim = 4 * w * side * side;
    this.features = this.child(
      "features",
      new Linear(this.flatDim, spec.featureDim, rng, { bias: true }),
    );
    this.heads = spec.heads.map((h) =>
      this.child(
        `heads.${h.name}`,
        new Linear(spec.featureDim, h.classes.length, rng, { bias: true }),
      ),
    );
    this.classIndex = spec.heads.map((h) => new Map(h.classes.map((c, i) => [c, i])));
  }

  /** Returns features [N, featureDim] and per-head logits of images x [N, C, H, W] in [−1, 1]. */
  forward(x: Tensor): { features: Tensor; logits: Tensor[] } {
    const { channels, imageSize } = this.spec;
    const [N, C, H, W] = x.shape as [number, number, number, number];
    if (x.rank !== 4 || C !== channels || H !== imageSize || W !== imageSize) {
      throw new Error(
        `EvalClassifier: input [${x.shape.join(", ")}] does not match [N, ${channels}, ${imageSize}, ${imageSize}]`,
      );
    }
    let h = x;
    this.conv.forEach((conv, i) => {
      h = silu(this.norm[i]!.forward(conv.forward(h)));
    });
    const features = silu(this.features.forward(reshape(h, [N, this.flatDim])));
    return { features, logits: this.heads.map((l) => l.forward(features)) };
  }

  /** Returns the head targets (class index per head) of a dataset example's labels. */
  targets(labels: Labels): number[] {
    const { dataset } = this.spec;
    const cls = (head: number, name: string, what: string): number => {
      const i = this.classIndex[head]!.get(name);
      if (i === undefined) {
        throw new Error(
          `EvalClassifier(${classifierDirName(dataset, this.spec.difficulty)}): ${what} '${name}' is not a class of head "${this.spec.heads[head]!.name}" (labels ${JSON.stringify(labels)})`,
        );
      }
      return i;
    };
    const intLabel = (field: string): number => {
      const v = labels[field];
      const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
      if (
        typeof n !== "number" ||
        !Number.isInteger(n) ||
        n < 0 ||
        n >= this.spec.heads[0]!.classes.length
      ) {
        throw new Error(
          `EvalClassifier(${dataset}): labels.${field} must be a class index in [0, ${this.spec.heads[0]!.classes.length}), got ${JSON.stringify(v)}`,
        );
      }
      return n;
    };
    switch (dataset) {
      case "mnist":
        return [intLabel("digit")];
      case "fashion-mnist":
        return [intLabel("class")];
      case "shapes": {
        const pairs = shapePairs(labels);
        return [
          cls(0, pairs[0]!, "shape"),
          cls(1, pairs[1] ?? NO_SECOND_SHAPE, pairs[1] === undefined ? "class" : "shape"),
        ];
      }
    }
  }

  /**
   * Returns the predicted class per head of each image (`labels[i][h]`) and the penultimate
   * features, row-major [n, featureDim]. Runs without a graph, `batch` images at a time, each
   * batch inside a buffer arena (results are copied out), so memory stays flat.
   */
  predict(
    images: readonly Image[],
    batch = PREDICT_BATCH,
  ): { labels: number[][]; features: Float32Array } {
    if (!Number.isInteger(batch) || batch < 1)
      throw new Error(`EvalClassifier.predict: batch must be a positive integer, got ${batch}`);
    const { channels, imageSize, featureDim } = this.spec;
    images.forEach((img, i) => {
      checkImage(img, `EvalClassifier.predict: image ${i}`);
      if (img.width !== imageSize || img.height !== imageSize || img.channels !== channels) {
        throw new Error(
          `EvalClassifier.predict: image ${i} is ${img.width}×${img.height}×${img.channels}, the classifier reads ${imageSize}×${imageSize}×${channels}`,
        );
      }
    });
    const labels: number[][] = [];
    const features = new Float32Array(images.length * featureDim);
    for (let at = 0; at < images.length; at += batch) {
      const chunk = images.slice(at, at + batch);
      withArena(() =>
        noGrad(() => {
          const out = this.forward(imagesToTensor(chunk));
          features.set(out.features.f32, at * featureDim);
          const per = out.logits.map((l) => argmaxRows(l.f32, l.shape[1]!));
          for (let i = 0; i < chunk.length; i++) labels.push(per.map((p) => p[i]!));
        }),
      );
    }
    return { labels, features };
  }

  /** Returns, per image, whether every head predicts the target of the matching labels. */
  matches(images: readonly Image[], labels: readonly Labels[], batch = PREDICT_BATCH): boolean[] {
    if (images.length !== labels.length)
      throw new Error(
        `EvalClassifier.matches: ${images.length} images but ${labels.length} labels`,
      );
    const want = labels.map((l) => this.targets(l));
    const got = this.predict(images, batch).labels;
    return got.map((p, i) => p.every((c, h) => c === want[i]![h]));
  }

  /** Returns the class names a prediction stands for, by head name. */
  describe(prediction: readonly number[]): Record<string, string> {
    const out: Record<string, string> = {};
    this.spec.heads.forEach((h, i) => {
      out[h.name] = h.classes[prediction[i]!] ?? "?";
    });
    return out;
  }
}

/** Returns the index of the largest value of each row of a [rows, cols] array. */
function argmaxRows(x: Float32Array, cols: number): number[] {
  const rows = x.length / cols;
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < cols; c++) if (x[r * cols + c]! > x[r * cols + best]!) best = c;
    out.push(best);
  }
  return out;
}
