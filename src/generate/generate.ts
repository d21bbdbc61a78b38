/**
 * The mixed-modal decoding loop (docs/RECIPE.md §6): sample text token by token with a KV cache; when
 * BOI appears, append pure-noise patches and denoise them in place with the chosen sampler (it
 * must fit the model's objective: DDPM/DDIM for "ddpm", flow-euler for "flow"),
 * recomputing only the image block each step; then recompute the image's keys/values from the
 * final clean latent, append EOI and return to text.
 *
 * Rows of a batch run in lockstep, each with its own random stream (sample i of a call with
 * seed s always draws from stream (s, firstSample + i), so batched equals one-by-one).
 * Classifier-free guidance doubles the batch: the unconditional rows hold the prompt with its
 * text removed, as the caption-dropped training examples do. The discrete-token model draws an
 * image as n code tokens after BOI instead of denoising (`sampleCodes`).
 *
 * The model runs on the active backend; the loop reads back only what it decides on (each
 * step's logits, each denoising step's prediction), so it awaits those reads and runs on a
 * device backend as on the host ones.
 */
import { documentLength, type TokenDocument } from "../data/pack.js";
import { guide, type Sampler } from "../diffusion/samplers.js";
import { isDiscrete, patchesPerImage, type TransfusionConfig, textVocab } from "../model/config.js";
import type { Transfusion } from "../model/transfusion.js";
import { mixSeed, Rng } from "../tensor/rng.js";
import { Tensor } from "../tensor/tensor.js";
import { DecodeState, type SpecialIds } from "./cache.js";
import { checkSampling, sampleToken, type TextSampling } from "./sampling.js";

export interface GenerateOptions {
  sampling: TextSampling;
  /** New text tokens per row at most (images not counted). */
  maxNewTokens: number;
  /** Tokens that end a row (default: end of document). */
  stopTokens?: number[];
  /** "forbid" never samples BOI (captioning); "force" starts an image right after the prompt. */
  images: "allow" | "forbid" | "force";
  /** Stop a row after its first generated image (text-to-image). */
  stopAfterImage: boolean;
  /** Most images per row. */
  maxImages: number;
  sampler: Sampler;
  /**
   * Classifier-free guidance scale, or null for none. Any number (even 1) runs the conditional
   * and unconditional branches as one batch.
   */
  guidanceScale: number | null;
  seed: number;
  /** Stream index of the first row (for batched = one-by-one). */
  firstSample?: number;
  /** Context length of the cache (default: prompt + budget). */
  capacity?: number;
  onImageStep?: (row: number, step: number, steps: number) => void;
  /**
   * Called while an image is denoised with each row's predicted clean latent x̂0 (the
   * sampler's `predictX0`, before the step's update), at steps `previewEvery`, 2·`previewEvery`,
   * … and at the last; `step` counts from 1. The latent is a fresh copy. Previews draw no
   * random numbers, so they never change the result. Not called for VQ codes.
   */
  onImagePreview?: (
    row: number,
    step: number,
    steps: number,
    x0: Float32Array,
  ) => void | Promise<void>;
  /** Steps between previews (default 1: every step). */
  previewEvery?: number;
}

/** A generated continuation: its parts in order (images as latents, or as VQ code indices). */
export interface GeneratedRow {
  parts: Array<{ text: number[] } | { latent: Float32Array } | { codes: Int32Array }>;
  /** Why the row ended. */
  stop: "stop-token" | "length" | "image";
}

/** Returns the prompt with every text segment removed (the unconditional guidance branch). */
export function unconditionalPrompt(doc: TokenDocument): TokenDocument {
  return { segments: doc.segments.filter((s) => !("text" in s)) };
}

/**
 * Returns the continuation of each prompt (clean prompt latents in order in `promptLatents`).
 * Rows run in lockstep: with images "allow", every row must decide on BOI together, so use
 * one row per call there (the `generate` convenience does).
 */
export async function generateBatch(
  model: Transfusion,
  prompts: readonly TokenDocument[],
  promptLatents: Float32Array,
  special: SpecialIds,
  opts: GenerateOptions,
): Promise<GeneratedRow[]> {
  checkSampling(opts.sampling);
  const c = model.config;
  checkSamplerFits(c, opts);
  const B = prompts.length;
  const guided = opts.guidanceScale !== null && opts.images !== "forbid";
  const rows = guided ? [...prompts, ...prompts.map(unconditionalPrompt)] : [...prompts];
  const perLatent = c.latentChannels * c.latentSize * c.latentSize;
  // Text-free prompts keep their images, so the unconditional rows reuse the same latents.
  const allLatents = guided ? concatF32(promptLatents, promptLatents) : promptLatents;
  const g = c.latentSize / c.patchSize;
  const n = g * g;
  const promptLen = Math.max(...rows.map((p) => documentLength(p, { gridH: g, gridW: g })));
  const capacity = opts.capacity ?? promptLen + opts.maxNewTokens + opts.maxImages * (n + 2) + 2;
  const state = new DecodeState(model, rows.length, capacity);
  let logits = state.prefill(rows, allLatents, special);
  const rngs = Array.from(
    { length: B },
    (_, i) => new Rng(mixSeed(opts.seed, (opts.firstSample ?? 0) + i, 11)),
  );
  const V = c.vocab;
  const stop = new Set(opts.stopTokens ?? [special.eodId]);
  const banned = new Uint8Array(V);
  banned[special.eoiId] = 1; // EOI is never sampled: the loop appends it after an image.
  banned[special.padId] = 1;
  if (opts.images === "forbid") banned[special.boiId] = 1;
  // Code tokens only ever follow BOI, where sampleCodes picks them.
  if (isDiscrete(c)) banned.fill(1, textVocab(c));
  const out: GeneratedRow[] = Array.from({ length: B }, () => ({
    parts: [],
    stop: "length" as const,
  }));
  const done = new Uint8Array(B);
  const imagesMade = new Int32Array(B);
  const textOf = (b: number): number[] => {
    const parts = out[b]!.parts;
    const last = parts[parts.length - 1];
    if (last && "text" in last) return last.text;
    const fresh = { text: [] as number[] };
    parts.push(fresh);
    return fresh.text;
  };
  let newTokens = 0;
  let forceImage = opts.images === "force";
  while (!done.every((d) => d === 1)) {
    // Choose each row's next token (BOI when an image is forced).
    const next = new Int32Array(rows.length).fill(special.padId);
    const l = forceImage ? null : await logits.readF32();
    for (let b = 0; b < B; b++) {
      if (done[b]) continue;
      if (forceImage) {
        next[b] = special.boiId;
        continue;
      }
      if (imagesMade[b]! >= opts.maxImages) banned[special.boiId] = 1;
      next[b] = sampleToken(l!.subarray(b * V, (b + 1) * V), opts.sampling, rngs[b]!, banned);
      if (opts.images !== "forbid") banned[special.boiId] = 0;
    }
    forceImage = false;
    const live = [...Array(B).keys()].filter((b) => !done[b]);
    const wantsImage = live.filter((b) => next[b] === special.boiId);
    if (wantsImage.length > 0 && wantsImage.length !== live.length) {
      throw new Error(
        "generateBatch: rows disagree on starting an image; generate them one at a time",
      );
    }
    if (guided) for (let b = 0; b < B; b++) next[B + b] = next[b]!;
    logits = state.appendTokens(next);
    for (const b of live) {
      const tok = next[b]!;
      if (tok !== special.boiId) {
        textOf(b).push(tok);
        if (stop.has(tok)) {
          done[b] = 1;
          out[b]!.stop = "stop-token";
        }
      }
    }
    if (wantsImage.length > 0) {
      const codes = isDiscrete(c) ? await sampleCodes(state, logits, B, guided, rngs, opts) : null;
      const latents = codes ? null : await denoiseImage(state, B, guided, rngs, opts);
      for (const b of live) {
        const at = b * perLatent;
        out[b]!.parts.push(
          codes
            ? { codes: codes.slice(at, at + perLatent) }
            : { latent: latents!.slice(at, at + perLatent) },
        );
        imagesMade[b]!++;
        if (opts.stopAfterImage) {
          done[b] = 1;
          out[b]!.stop = "image";
        }
      }
      if (done.every((d) => d === 1)) break;
      // Text resumes after EOI, which attends to the image's clean keys/values.
      logits = state.appendTokens(new Int32Array(rows.length).fill(special.eoiId));
    } else {
      newTokens++;
      if (newTokens >= opts.maxNewTokens) {
        for (const b of live) if (!done[b]) done[b] = 1;
      }
    }
  }
  return out;
}

/**
 * Returns the clean latents [B, C, H, W] of one image per row, denoised in place from pure
 * noise; the final clean latent is then committed to the cache (its keys/values recomputed).
 */
async function denoiseImage(
  state: DecodeState,
  B: number,
  guided: boolean,
  rngs: Rng[],
  opts: GenerateOptions,
): Promise<Float32Array> {
  const c = state.model.config;
  const per = c.latentChannels * c.latentSize * c.latentSize;
  const shape = [state.batch, c.latentChannels, c.latentSize, c.latentSize];
  const x = new Float32Array(B * per);
  for (let b = 0; b < B; b++) rngs[b]!.fillNormal(x.subarray(b * per, (b + 1) * per));
  const ts = opts.sampler.timesteps();
  const input = new Float32Array(state.batch * per);
  const every = opts.previewEvery ?? 1;
  if (!Number.isInteger(every) || every < 1) {
    throw new Error(`generateBatch: previewEvery must be an integer ≥ 1, got ${every}`);
  }
  const previewAt = (step: number) =>
    opts.onImagePreview !== undefined && (step % every === 0 || step === ts.length);
  for (let i = 0; i < ts.length; i++) {
    input.set(x);
    if (guided) input.set(x, B * per);
    const pred = await state
      .imageBlock(new Tensor(input, shape), new Int32Array(state.batch).fill(ts[i]!), false)
      .readF32();
    for (let b = 0; b < B; b++) {
      let p = pred.subarray(b * per, (b + 1) * per);
      if (guided)
        p = guide(p, pred.subarray((B + b) * per, (B + b + 1) * per), opts.guidanceScale!);
      const xb = x.subarray(b * per, (b + 1) * per);
      if (previewAt(i + 1)) {
        await opts.onImagePreview!(b, i + 1, ts.length, opts.sampler.predictX0(i, xb, p));
      }
      opts.sampler.step(i, xb, p, rngs[b]!);
      opts.onImageStep?.(b, i + 1, ts.length);
    }
  }
  input.set(x);
  if (guided) input.set(x, B * per);
  state.imageBlock(new Tensor(input, shape), new Int32Array(state.batch), true);
  return x;
}

/** How image codes are drawn: from the model's (guided) distribution as it stands. */
const CODE_SAMPLING: TextSampling = { temperature: 1, topK: 0, topP: 1 };

/**
 * Returns the code indices [B, n] of one image per row of the discrete-token model, sampled
 * one code at a time after BOI (`logits`: the rows' logits at BOI) and appended to the cache.
 * Guidance mixes the logits, l_u + s·(l_c − l_u), over the code tokens, as classifier-free
 * guidance does for token models.
 */
async function sampleCodes(
  state: DecodeState,
  logits: Tensor,
  B: number,
  guided: boolean,
  rngs: Rng[],
  opts: GenerateOptions,
): Promise<Int32Array> {
  const c = state.model.config;
  const n = patchesPerImage(c);
  const first = textVocab(c);
  const K = c.imageCodes;
  const V = c.vocab;
  const codes = new Int32Array(B * n);
  const mixed = new Float32Array(K);
  let l = logits;
  for (let k = 0; k < n; k++) {
    const next = new Int32Array(state.batch);
    const lh = await l.readF32();
    for (let b = 0; b < B; b++) {
      const cond = lh.subarray(b * V + first, (b + 1) * V);
      if (guided) {
        const uncond = lh.subarray((B + b) * V + first, (B + b + 1) * V);
        const s = opts.guidanceScale!;
        for (let j = 0; j < K; j++) mixed[j] = uncond[j]! + s * (cond[j]! - uncond[j]!);
      } else mixed.set(cond);
      const code = sampleToken(mixed, CODE_SAMPLING, rngs[b]!);
      codes[b * n + k] = code;
      next[b] = first + code;
      if (guided) next[B + b] = first + code;
      opts.onImageStep?.(b, k + 1, n);
    }
    l = state.appendTokens(next);
  }
  return codes;
}

/** Throws when the sampler expects another prediction than the model makes (ε or velocity). */
function checkSamplerFits(c: TransfusionConfig, opts: GenerateOptions): void {
  // No image is generated, or codes are sampled as tokens: no sampler runs.
  if (opts.images === "forbid" || isDiscrete(c)) return;
  const objective = c.objective;
  const wants = objective === "flow" ? "velocity" : "epsilon";
  if (opts.sampler.prediction !== wants) {
    throw new Error(
      `generateBatch: the sampler predicts ${opts.sampler.prediction} but a model trained with objective "${objective}" predicts ${wants}; build it with createSampler(…, "${objective}")`,
    );
  }
}

function concatF32(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
