/**
 * A trained model ready to use: the checkpoint's EMA weights, tokenizer and VAE, with the
 * conveniences `textToImage`, `caption` and `generate` that work on strings and images.
 *
 * This module imports nothing from Node, so the same class runs in a web page or a Web Worker
 * (see src/browser.ts). A checkpoint becomes a pipeline through one parsing path,
 * `fromFiles` (the files' contents by name); `fromUrl` fetches them, and in Node
 * `TransfusionPipeline.load(dir)` reads them from a folder (installed by ./pipeline.ts). Those
 * three are thin: the loading itself is ./pipeline-load.ts, the options ./pipeline-options.ts.
 */
import type { Document } from "../data/documents.js";
import { documentLength, type Segment, type TokenDocument } from "../data/pack.js";
import { floatToImage, type Image, imagesToTensor } from "../data/pixels.js";
import type { BpeTokenizer } from "../data/tokenizer-core.js";
import { createSampler } from "../diffusion/config.js";
import { cosineSchedule } from "../diffusion/schedule.js";
import { codeToken, isDiscrete, type TransfusionConfig, textVocab } from "../model/config.js";
import type { Transfusion } from "../model/transfusion.js";
import type { Vae } from "../model/vae.js";
import { VqVae } from "../model/vqvae.js";
import { Tensor } from "../tensor/tensor.js";
import type { SpecialIds } from "./cache.js";
import { type GeneratedRow, generateBatch } from "./generate.js";
import {
  type CheckpointFiles,
  type FromFilesOptions,
  type FromUrlOptions,
  fetchCheckpointFiles,
  loadCheckpointFolder,
  readCheckpointFiles,
} from "./pipeline-load.js";
import {
  type CompleteOptions,
  DEFAULT_IMAGE_OPTIONS,
  type GeneratedPart,
  type ImageOptions,
} from "./pipeline-options.js";
import { GREEDY, type TextSampling } from "./sampling.js";

export type {
  CheckpointFiles,
  FromFilesOptions,
  FromUrlOptions,
  LoadProgress,
} from "./pipeline-load.js";
export {
  type CompleteOptions,
  DEFAULT_IMAGE_OPTIONS,
  type GeneratedPart,
  type ImageOptions,
} from "./pipeline-options.js";

export class TransfusionPipeline {
  readonly special: SpecialIds;
  private readonly autoencoder: Vae | VqVae | null;

  constructor(
    readonly model: Transfusion,
    readonly tokenizer: BpeTokenizer,
    /**
     * The image autoencoder: the KL-VAE, or the VQ tokenizer of a discrete-token model; null
     * for a model trained on text only, which then writes text but neither reads nor draws images.
     */
    vae: Vae | VqVae | null,
    readonly source = "(in memory)",
    /** Sequence length the model was trained on; longer prompts are refused. */
    readonly contextLength: number | null = null,
    /** The checkpoint's config.json as stored (null when built in memory). */
    readonly checkpointConfig: Readonly<Record<string, unknown>> | null = null,
  ) {
    this.special = {
      boiId: tokenizer.boiId,
      eoiId: tokenizer.eoiId,
      padId: tokenizer.padId,
      eodId: tokenizer.eodId,
    };
    const c = model.config;
    if (tokenizer.vocabSize !== textVocab(c)) {
      throw new Error(
        `${source}: tokenizer has ${tokenizer.vocabSize} tokens but the model expects ${textVocab(c)}`,
      );
    }
    this.autoencoder = vae;
    if (vae === null) return;
    if (isDiscrete(c) !== vae instanceof VqVae) {
      throw new Error(
        `${source}: a ${isDiscrete(c) ? "discrete-token model needs a VQ tokenizer" : "Transfusion model needs a KL-VAE"} for its images`,
      );
    }
    if (vae instanceof VqVae && vae.config.codebookSize !== c.imageCodes) {
      throw new Error(
        `${source}: the VQ tokenizer has ${vae.config.codebookSize} codes but the model expects ${c.imageCodes}`,
      );
    }
  }

  /**
   * Returns the pipeline stored in a checkpoint folder (EMA weights); errors name the file.
   * Node only (it reads files): in a web page use `fromUrl` or `fromFiles`.
   */
  static load(dir: string): TransfusionPipeline {
    return loadCheckpointFolder(dir);
  }

  /**
   * Returns the pipeline held by a checkpoint's files (see `pipelineFiles`): config.json,
   * tokenizer.json, the autoencoder's weights (vae.safetensors or vqvae.safetensors; none for a
   * text-only model) and model.safetensors. Every check of a load runs: format and version,
   * the model config, fingerprints of the tokenizer and autoencoder, every tensor's shape and
   * finiteness. Errors name the file as `options.where` does.
   */
  static fromFiles(files: CheckpointFiles, options: FromFilesOptions = {}): TransfusionPipeline {
    const p = readCheckpointFiles(files, options);
    return new TransfusionPipeline(
      p.model,
      p.tokenizer,
      p.vae,
      p.source,
      p.contextLength,
      p.checkpointConfig,
    );
  }

  /**
   * Returns the pipeline of the checkpoint folder served at `baseUrl` (e.g. "/model/"): fetches
   * config.json, then the files it names, and builds the pipeline with `fromFiles`.
   * `onProgress` hears about every chunk received. Runs in a browser, a Web Worker or Node.
   */
  static async fromUrl(
    baseUrl: string | URL,
    options: FromUrlOptions = {},
  ): Promise<TransfusionPipeline> {
    const { files, source, where } = await fetchCheckpointFiles(baseUrl, options);
    return TransfusionPipeline.fromFiles(files, { source, where });
  }

  get config(): TransfusionConfig {
    return this.model.config;
  }

  /** Returns the image autoencoder; throws for a model trained on text only, which has none. */
  get vae(): Vae | VqVae {
    if (this.autoencoder === null) {
      throw new Error(
        `${this.source}: this model was trained on text only (no training document had an image), so it has no image autoencoder; it can write text but cannot read or draw images`,
      );
    }
    return this.autoencoder;
  }

  /** Returns true when the model has an image autoencoder (false: trained on text only). */
  get hasImages(): boolean {
    return this.autoencoder !== null;
  }

  /** Returns the side and channels of the images the model reads and draws (null: text only). */
  get imageShape(): { size: number; channels: 1 | 3 } | null {
    if (this.autoencoder === null) return null;
    return {
      size: this.config.latentSize * this.autoencoder.downsampleFactor,
      channels: this.autoencoder.config.imageChannels as 1 | 3,
    };
  }

  /** Returns nothing; throws (see `vae`) for a text-only model, before any generation work. */
  private requireImages(): void {
    void this.vae;
  }

  /** Returns the KL-VAE; throws for a discrete-token model, whose images are codes. */
  private klVae(): Vae {
    if (this.vae instanceof VqVae) {
      throw new Error(`${this.source}: a discrete-token model has VQ codes, not latents`);
    }
    return this.vae;
  }

  /** Returns the scaled clean latents [N, C, h, w] of images (resized by the caller). */
  async encodeImages(images: readonly Image[]): Promise<Float32Array> {
    if (images.length === 0) return new Float32Array(0);
    return this.klVae().encodeLatents(imagesToTensor(images)).readF32();
  }

  /**
   * Returns prompt segments for images (clean latents at t = 0 with their latents, or the code
   * tokens of a discrete-token model, which need no latents).
   */
  async imageSegments(
    images: readonly Image[],
  ): Promise<{ segments: Segment[]; latents: Float32Array }> {
    const c = this.config;
    // Before touching the autoencoder: a text-only model takes prompts without images.
    if (images.length === 0) return { segments: [], latents: new Float32Array(0) };
    if (this.vae instanceof VqVae) {
      const codes = this.vae.encodeCodes(imagesToTensor(images));
      const n = codes.length / images.length;
      const segments = images.map((_, i) => ({
        codes: Array.from(codes.subarray(i * n, (i + 1) * n), (k) => codeToken(c, k)),
      }));
      return { segments, latents: new Float32Array(0) };
    }
    const segments = images.map((_, i) => ({ image: i, t: 0 }));
    return { segments, latents: await this.encodeImages(images) };
  }

  /** Returns the images decoded from scaled latents, one per latent. */
  async decodeLatents(latents: readonly Float32Array[]): Promise<Image[]> {
    if (latents.length === 0) return [];
    const c = this.config;
    const per = c.latentChannels * c.latentSize * c.latentSize;
    const all = new Float32Array(latents.length * per);
    latents.forEach((l, i) => {
      all.set(l, i * per);
    });
    const x = this.klVae().decodeLatents(
      new Tensor(all, [latents.length, c.latentChannels, c.latentSize, c.latentSize]),
    );
    return tensorImages(x);
  }

  /** Returns the images decoded from VQ code indices, one image per code array. */
  async decodeCodes(codes: readonly Int32Array[]): Promise<Image[]> {
    if (codes.length === 0) return [];
    if (!(this.vae instanceof VqVae)) {
      throw new Error(`${this.source}: a Transfusion model has latents, not VQ codes`);
    }
    const s = this.config.latentSize;
    const all = new Int32Array(codes.length * s * s);
    codes.forEach((k, i) => {
      all.set(k, i * s * s);
    });
    return tensorImages(this.vae.decodeCodes(all, codes.length, s, s));
  }

  /** Returns the image of a generated part (latent or codes). */
  private partImages(
    parts: ReadonlyArray<{ latent: Float32Array } | { codes: Int32Array }>,
  ): Promise<Image[]> {
    const latents = parts.flatMap((p) => ("latent" in p ? [p.latent] : []));
    const codes = parts.flatMap((p) => ("codes" in p ? [p.codes] : []));
    return latents.length ? this.decodeLatents(latents) : this.decodeCodes(codes);
  }

  /** Throws if a prompt plus what must follow it exceeds the trained context. */
  private checkContext(prompts: readonly TokenDocument[], extra: number): void {
    if (this.contextLength === null) return;
    const g = this.config.latentSize / this.config.patchSize;
    prompts.forEach((p, i) => {
      const len = documentLength(p, { gridH: g, gridW: g });
      if (len + extra > this.contextLength!) {
        throw new Error(
          `prompt ${i} needs ${len} positions (+${extra} to generate), longer than the context of ${this.contextLength} the model was trained with`,
        );
      }
    });
  }

  private sampler(o: ImageOptions) {
    const schedule = cosineSchedule({ T: this.config.diffusionSteps });
    const kind =
      this.config.objective === "flow" && o.sampler !== "flow-euler" ? "flow-euler" : o.sampler;
    return createSampler(
      { kind, steps: o.steps, x0Clip: o.x0Clip },
      schedule,
      this.config.objective,
    );
  }

  /** Returns the generateBatch hooks of the image options: step counts and decoded previews. */
  private imageHooks(o: ImageOptions) {
    const onPreview = o.onPreview;
    return {
      ...(o.onImageStep ? { onImageStep: o.onImageStep } : {}),
      ...(onPreview && !isDiscrete(this.config)
        ? {
            previewEvery: o.previewEvery ?? 1,
            onImagePreview: async (row: number, step: number, steps: number, x0: Float32Array) =>
              onPreview(row, step, steps, (await this.decodeLatents([x0]))[0]!),
          }
        : {}),
    };
  }

  /** Returns one generated image per caption (batched; deterministic for a seed). */
  async textToImage(
    captions: readonly string[],
    options: Partial<ImageOptions> = {},
  ): Promise<{ images: Image[] }> {
    const o = { ...DEFAULT_IMAGE_OPTIONS, ...options };
    this.requireImages();
    const prompts: TokenDocument[] = captions.map((c) => ({
      segments: c ? [{ text: this.tokenizer.encode(c) }] : [],
    }));
    this.checkContext(prompts, (this.config.latentSize / this.config.patchSize) ** 2 + 2);
    const rows = await generateBatch(this.model, prompts, new Float32Array(0), this.special, {
      sampling: GREEDY,
      maxNewTokens: 1,
      images: "force",
      stopAfterImage: true,
      maxImages: 1,
      sampler: this.sampler(o),
      guidanceScale: o.guidanceScale,
      seed: o.seed,
      ...(o.firstSample !== undefined ? { firstSample: o.firstSample } : {}),
      ...this.imageHooks(o),
    });
    const parts = rows.map((r) => {
      const part = r.parts.find((p) => !("text" in p));
      if (!part || "text" in part) throw new Error("textToImage: the model produced no image");
      return part;
    });
    return { images: await this.partImages(parts) };
  }

  /** Returns a caption per image (greedy decoding, images forbidden, up to maxTokens). */
  async caption(
    images: readonly Image[],
    maxTokens = 32,
    sampling: TextSampling = GREEDY,
    seed = 0,
  ): Promise<string[]> {
    const { segments, latents } = await this.imageSegments(images);
    const prompts: TokenDocument[] = segments.map((s) => ({ segments: [s] }));
    const rows = await generateBatch(this.model, prompts, latents, this.special, {
      sampling,
      maxNewTokens: maxTokens,
      images: "forbid",
      stopAfterImage: false,
      maxImages: 0,
      sampler: this.sampler(DEFAULT_IMAGE_OPTIONS),
      guidanceScale: null,
      seed,
    });
    return rows.map((r) => this.decodeText(r));
  }

  private decodeText(r: GeneratedRow): string {
    const ids = r.parts
      .flatMap((p) => ("text" in p ? p.text : []))
      .filter((t) => t !== this.special.eodId);
    return this.tokenizer.decode(ids).trim();
  }

  /**
   * Returns the continuation of a mixed document as parts in order: text sampled token by
   * token, an image drawn whenever the model emits BOI (one row; the document's images are read
   * as clean latents). Every image setting is honoured, guidance included: the unconditional
   * branch holds the prompt without its text and then the same generated tokens. Deterministic
   * for a seed.
   */
  async generate(doc: Document, options: CompleteOptions = {}): Promise<GeneratedPart[]> {
    const o = { ...DEFAULT_IMAGE_OPTIONS, ...options };
    const maxImages = options.maxImages ?? 2;
    if (!Number.isInteger(maxImages) || maxImages < 0)
      throw new Error(`generate: maxImages must be an integer ≥ 0, got ${maxImages}`);
    const images = doc.parts.flatMap((p) => ("image" in p ? [p.image] : []));
    const prompt = await this.imageSegments(images);
    let k = 0;
    const segments: Segment[] = doc.parts.map((p) =>
      "text" in p ? { text: this.tokenizer.encode(p.text) } : prompt.segments[k++]!,
    );
    // A text-only model has no decoder for an image it might start.
    const canDraw = this.hasImages && maxImages > 0;
    const rows = await generateBatch(this.model, [{ segments }], prompt.latents, this.special, {
      sampling: options.sampling ?? GREEDY,
      maxNewTokens: options.maxNewTokens ?? 64,
      images: canDraw ? "allow" : "forbid",
      stopAfterImage: false,
      maxImages,
      sampler: this.sampler(o),
      guidanceScale: o.guidanceScale,
      seed: o.seed,
      ...this.imageHooks(o),
    });
    const parts: GeneratedPart[] = [];
    for (const p of rows[0]!.parts) {
      parts.push(
        "text" in p
          ? { text: this.tokenizer.decode(p.text.filter((t) => t !== this.special.eodId)) }
          : { image: (await this.partImages([p]))[0]! },
      );
    }
    return parts;
  }
}

/** Returns the images [N, C, H, W] of a tensor as Images (read back from where it is). */
async function tensorImages(x: Tensor): Promise<Image[]> {
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const v = await x.readF32();
  return Array.from({ length: N }, (_, i) =>
    floatToImage(v.subarray(i * C * H * W, (i + 1) * C * H * W), C as 1 | 3, H, W),
  );
}
