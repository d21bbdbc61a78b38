/**
 * A trained model ready to use: the checkpoint's EMA weights, tokenizer and VAE, with the
 * conveniences `textToImage`, `caption` and `generate` that work on strings and images.
 *
 * This module imports nothing from Node, so the same class runs in a web page or a Web Worker
 * (see src/browser.ts). A checkpoint becomes a pipeline through one parsing path,
 * `fromFiles` (the files' contents by name); `fromUrl` fetches them, and in Node
 * `TransfusionPipeline.load(dir)` reads them from a folder (installed by ./pipeline.ts).
 */
import type { Document } from "../data/documents.js";
import { documentLength, type Segment, type TokenDocument } from "../data/pack.js";
import { floatToImage, type Image, imagesToTensor } from "../data/pixels.js";
import { BpeTokenizer } from "../data/tokenizer-core.js";
import { createSampler, type SamplerKind } from "../diffusion/config.js";
import { cosineSchedule } from "../diffusion/schedule.js";
import {
  CONFIG_FILE,
  checkFingerprints,
  checkpointAutoencoderFile,
  loadModuleTensors,
  MODEL_FILE,
  parseCheckpointConfig,
  parseJson,
  pipelineFiles,
  TOKENIZER_FILE,
} from "../io/checkpoint-format.js";
import { vaeFromSafetensors } from "../io/vae-format.js";
import { VQVAE_WEIGHTS_FILE, vqvaeFromSafetensors } from "../io/vqvae-format.js";
import { codeToken, isDiscrete, type TransfusionConfig, textVocab } from "../model/config.js";
import { Transfusion } from "../model/transfusion.js";
import type { Vae } from "../model/vae.js";
import { VqVae } from "../model/vqvae.js";
import { Rng } from "../tensor/rng.js";
import { parseSafetensors } from "../tensor/safetensors-format.js";
import { Tensor } from "../tensor/tensor.js";
import type { SpecialIds } from "./cache.js";
import { type GeneratedRow, generateBatch } from "./generate.js";
import { GREEDY, type TextSampling } from "./sampling.js";

export interface ImageOptions {
  sampler: SamplerKind;
  steps: number;
  /** Classifier-free guidance scale; null for none. */
  guidanceScale: number | null;
  seed: number;
  /**
   * Clip the predicted clean latent to ±x0Clip at every step (null: off). With the cosine
   * schedule ᾱ at the last training step is ~1e-9, so the first step divides the noise
   * prediction's error by √ᾱ; clipping bounds it (the latents are scaled to unit variance).
   */
  x0Clip: number | null;
  /** Stream index of the first sample (batched = one-by-one). */
  firstSample?: number;
  onImageStep?: (row: number, step: number, steps: number) => void;
  /**
   * Called while an image is denoised with the image the model currently predicts (its
   * clean-latent estimate x̂0, decoded by the VAE) every `previewEvery` steps and at the last
   * step; `step` counts from 1. Previews never change the result. Not called for a
   * discrete-token model, whose images are codes.
   */
  onPreview?: (row: number, step: number, steps: number, image: Image) => void;
  /** Steps between previews (default 1). */
  previewEvery?: number;
}

/**
 * Respaced DDPM with 100 of the 1000 training steps (the paper uses 250; 100 measured as good
 * on the demo model at 2.5× less cost), guidance 5 as in the paper's main comparison, and the
 * predicted clean latent clipped to ±3 (unit-variance latents).
 */
export const DEFAULT_IMAGE_OPTIONS: ImageOptions = {
  sampler: "ddpm",
  steps: 100,
  guidanceScale: 5,
  seed: 0,
  x0Clip: 3,
};

/** Options of `TransfusionPipeline.generate`: the image settings plus text sampling. */
export interface CompleteOptions extends Partial<ImageOptions> {
  /** How text tokens are chosen (default greedy). */
  sampling?: TextSampling;
  /** New text tokens at most, images not counted (default 64). */
  maxNewTokens?: number;
  /** Images at most (default 2); 0 never starts one. */
  maxImages?: number;
}

export interface GeneratedPart {
  text?: string;
  image?: Image;
}

/** A checkpoint's files by name: config.json and tokenizer.json as text or UTF-8 bytes, weights as bytes. */
export type CheckpointFiles = Readonly<Record<string, Uint8Array | string>>;

/** Where checkpoint files came from, for messages and `pipeline.source`. */
export interface FromFilesOptions {
  /** The folder or URL the files came from (default "(files)"). */
  source?: string;
  /** Returns how messages name file `name` (default `${source}/${name}`). */
  where?: (name: string) => string;
}

/** Progress of `fromUrl`: bytes received so far over all files, and the file that received them. */
export interface LoadProgress {
  file: string;
  loaded: number;
  /** Sum of the files' sizes, once every response has announced its size (else null). */
  total: number | null;
}

export interface FromUrlOptions {
  onProgress?: (p: LoadProgress) => void;
  /** The fetch to use (default globalThis.fetch). */
  fetch?: typeof fetch;
}

/** Reads a checkpoint folder in Node (installed by ./pipeline.ts); null where there are no files. */
let folderLoader: ((dir: string) => TransfusionPipeline) | null = null;

/** Installs what `TransfusionPipeline.load(dir)` runs (Node's ./pipeline.ts does). */
export function setCheckpointFolderLoader(load: (dir: string) => TransfusionPipeline): void {
  folderLoader = load;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

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
    if (!folderLoader) {
      throw new Error(
        `TransfusionPipeline.load("${dir}") reads a folder, which needs Node (import the package's main entry there); in a web page use TransfusionPipeline.fromUrl(url) or fromFiles(files)`,
      );
    }
    return folderLoader(dir);
  }

  /**
   * Returns the pipeline held by a checkpoint's files (see `pipelineFiles`): config.json,
   * tokenizer.json, the autoencoder's weights (vae.safetensors or vqvae.safetensors; none for a
   * text-only model) and model.safetensors. Every check of a load runs: format and version,
   * the model config, fingerprints of the tokenizer and autoencoder, every tensor's shape and
   * finiteness. Errors name the file as `options.where` does.
   */
  static fromFiles(files: CheckpointFiles, options: FromFilesOptions = {}): TransfusionPipeline {
    const source = options.source ?? "(files)";
    const where = options.where ?? ((name: string) => `${source}/${name}`);
    const get = (name: string): Uint8Array | string => {
      const v = Object.hasOwn(files, name) ? files[name] : undefined;
      if (v === undefined) throw new Error(`${where(name)}: missing from the checkpoint's files`);
      return v;
    };
    const text = (name: string): string => {
      const v = get(name);
      if (typeof v === "string") return v;
      try {
        return strictUtf8.decode(v);
      } catch {
        throw new Error(`${where(name)}: not valid UTF-8`);
      }
    };
    const bytes = (name: string): Uint8Array => {
      const v = get(name);
      if (typeof v === "string") throw new Error(`${where(name)}: expected bytes, got text`);
      return v;
    };
    const configPath = where(CONFIG_FILE);
    const cfg = parseCheckpointConfig(parseJson(text(CONFIG_FILE), configPath), configPath);
    const tokenizer = BpeTokenizer.fromText(text(TOKENIZER_FILE), where(TOKENIZER_FILE));
    const aeFile = checkpointAutoencoderFile(cfg);
    let vae: Vae | VqVae | null = null;
    if (aeFile !== null) {
      const st = parseSafetensors(bytes(aeFile), where(aeFile));
      vae =
        aeFile === VQVAE_WEIGHTS_FILE
          ? vqvaeFromSafetensors(st, where(aeFile))
          : vaeFromSafetensors(st, where(aeFile));
    }
    checkFingerprints(cfg, tokenizer, vae, where);
    const model = new Transfusion(cfg.model, new Rng(0));
    const weights = where(MODEL_FILE);
    loadModuleTensors(model, parseSafetensors(bytes(MODEL_FILE), weights), weights);
    const mixer = cfg.raw.mixer as { seqLen?: unknown } | undefined;
    const ctx = typeof mixer?.seqLen === "number" ? mixer.seqLen : null;
    return new TransfusionPipeline(model, tokenizer, vae, source, ctx, cfg.raw);
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
    const doFetch = options.fetch ?? globalThis.fetch;
    const here = (globalThis as { location?: { href: string } }).location?.href;
    const base = new URL(String(baseUrl), here);
    if (!base.pathname.endsWith("/")) base.pathname += "/";
    const where = (name: string) => new URL(name, base).href;
    const configText = new TextDecoder().decode(await fetchBytes(doFetch, where(CONFIG_FILE)));
    const cfg = parseCheckpointConfig(
      parseJson(configText, where(CONFIG_FILE)),
      where(CONFIG_FILE),
    );
    const names = pipelineFiles(cfg).filter((n) => n !== CONFIG_FILE);
    const loaded = new Map<string, number>();
    const sizes = new Map<string, number | null>();
    const report = (file: string) => {
      if (!options.onProgress) return;
      let sum = 0;
      for (const v of loaded.values()) sum += v;
      const known = [...sizes.values()];
      const total =
        known.length === names.length && known.every((s) => s !== null)
          ? known.reduce<number>((a, b) => a + b!, 0)
          : null;
      options.onProgress({ file, loaded: sum, total });
    };
    const bodies = await Promise.all(
      names.map((name) =>
        fetchBytes(doFetch, where(name), (got, size) => {
          loaded.set(name, got);
          sizes.set(name, size);
          report(name);
        }),
      ),
    );
    const files: Record<string, Uint8Array | string> = { [CONFIG_FILE]: configText };
    names.forEach((n, i) => {
      files[n] = bodies[i]!;
    });
    return TransfusionPipeline.fromFiles(files, { source: base.href, where });
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
  encodeImages(images: readonly Image[]): Float32Array {
    if (images.length === 0) return new Float32Array(0);
    return this.klVae().encodeLatents(imagesToTensor(images)).f32;
  }

  /**
   * Returns prompt segments for images (clean latents at t = 0 with their latents, or the code
   * tokens of a discrete-token model, which need no latents).
   */
  imageSegments(images: readonly Image[]): { segments: Segment[]; latents: Float32Array } {
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
    return { segments, latents: this.encodeImages(images) };
  }

  /** Returns the images decoded from scaled latents, one per latent. */
  decodeLatents(latents: readonly Float32Array[]): Image[] {
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
  decodeCodes(codes: readonly Int32Array[]): Image[] {
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
  ): Image[] {
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
            onImagePreview: (row: number, step: number, steps: number, x0: Float32Array) =>
              onPreview(row, step, steps, this.decodeLatents([x0])[0]!),
          }
        : {}),
    };
  }

  /** Returns one generated image per caption (batched; deterministic for a seed). */
  textToImage(
    captions: readonly string[],
    options: Partial<ImageOptions> = {},
  ): { images: Image[] } {
    const o = { ...DEFAULT_IMAGE_OPTIONS, ...options };
    this.requireImages();
    const prompts: TokenDocument[] = captions.map((c) => ({
      segments: c ? [{ text: this.tokenizer.encode(c) }] : [],
    }));
    this.checkContext(prompts, (this.config.latentSize / this.config.patchSize) ** 2 + 2);
    const rows = generateBatch(this.model, prompts, new Float32Array(0), this.special, {
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
    return { images: this.partImages(parts) };
  }

  /** Returns a caption per image (greedy decoding, images forbidden, up to maxTokens). */
  caption(
    images: readonly Image[],
    maxTokens = 32,
    sampling: TextSampling = GREEDY,
    seed = 0,
  ): string[] {
    const { segments, latents } = this.imageSegments(images);
    const prompts: TokenDocument[] = segments.map((s) => ({ segments: [s] }));
    const rows = generateBatch(this.model, prompts, latents, this.special, {
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
  generate(doc: Document, options: CompleteOptions = {}): GeneratedPart[] {
    const o = { ...DEFAULT_IMAGE_OPTIONS, ...options };
    const maxImages = options.maxImages ?? 2;
    if (!Number.isInteger(maxImages) || maxImages < 0)
      throw new Error(`generate: maxImages must be an integer ≥ 0, got ${maxImages}`);
    const images = doc.parts.flatMap((p) => ("image" in p ? [p.image] : []));
    const prompt = this.imageSegments(images);
    let k = 0;
    const segments: Segment[] = doc.parts.map((p) =>
      "text" in p ? { text: this.tokenizer.encode(p.text) } : prompt.segments[k++]!,
    );
    // A text-only model has no decoder for an image it might start.
    const canDraw = this.hasImages && maxImages > 0;
    const rows = generateBatch(this.model, [{ segments }], prompt.latents, this.special, {
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
    return rows[0]!.parts.map((p) =>
      "text" in p
        ? { text: this.tokenizer.decode(p.text.filter((t) => t !== this.special.eodId)) }
        : { image: this.partImages([p])[0]! },
    );
  }
}

/** Returns the images [N, C, H, W] of a tensor as Images. */
function tensorImages(x: Tensor): Image[] {
  const [N, C, H, W] = x.shape as [number, number, number, number];
  return Array.from({ length: N }, (_, i) =>
    floatToImage(x.f32.subarray(i * C * H * W, (i + 1) * C * H * W), C as 1 | 3, H, W),
  );
}

/**
 * Returns the body of `url` as bytes, reporting (bytes so far, announced size or null) as
 * chunks arrive; errors name the URL and the HTTP status.
 */
async function fetchBytes(
  doFetch: typeof fetch,
  url: string,
  onChunk?: (loaded: number, size: number | null) => void,
): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await doFetch(url);
  } catch (err) {
    throw new Error(`${url}: cannot fetch (${(err as Error).message})`, { cause: err });
  }
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status} ${res.statusText}`.trimEnd());
  // A compressed response announces its compressed length, not the bytes we will count.
  const header = res.headers.get("content-length");
  const encoding = res.headers.get("content-encoding");
  const plain = encoding === null || encoding === "identity";
  const size = plain && header !== null && /^\d+$/.test(header) ? Number(header) : null;
  if (!res.body) {
    const all = new Uint8Array(await res.arrayBuffer());
    onChunk?.(all.length, size);
    return all;
  }
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  onChunk?.(0, size);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    onChunk?.(loaded, size);
  }
  // One buffer of exactly the file, starting at offset 0, so float weights can be read in place.
  const out = new Uint8Array(loaded);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
