/**
 * `transfusion bench sample`: sampling speed of the train bench's model (d=256, 4 layers,
 * 4 heads, vocabulary 1024, 4×8×8 latents, patch 1, linear encoder).
 *
 * The weights are random: the work done per image step or text token does not depend on
 * their values (no early exit, fixed step counts, stop tokens disabled), so neither does the
 * speed. Figures are medians over several repeats after one warm-up run:
 * - one image from a 32-token prompt with 32 DDIM steps, as `generateBatch` makes it with
 *   images "force" and stopAfterImage (prefill, BOI, 32 image-block evaluations, the final
 *   clean commit), without and with classifier-free guidance (scale 3: both branches in one
 *   batch of 2);
 * - greedy text with the KV cache: batch 1, a 32-token prompt, 64 new tokens, reported as ms
 *   per new token with the prefill timed separately.
 */
import { DdimSampler } from "../diffusion/samplers.js";
import { cosineSchedule } from "../diffusion/schedule.js";
import { DecodeState } from "../generate/cache.js";
import { generateBatch } from "../generate/generate.js";
import { GREEDY, sampleToken } from "../generate/sampling.js";
import { patchesPerImage } from "../model/config.js";
import { Transfusion } from "../model/transfusion.js";
import { type BackendName, backend, useBackend } from "../tensor/backends/index.js";
import { Rng } from "../tensor/rng.js";
import { median, modelShape, peakRssMb, timeSecondsAsync } from "./stats.js";
import {
  BENCH_SPECIAL,
  type BenchModelShape,
  benchConfig,
  blockAndHeadParams,
  randomText,
} from "./train.js";

/** The PyTorch port's sampling figures for this model, measured on the development machine. */
export const PYTORCH_PORT_SAMPLE = {
  imageSeconds32Steps: 1.04,
  imageSeconds32StepsGuided: 1.8,
  textMsPerToken: 5.6,
} as const;

export interface SampleBenchOptions {
  backend?: BackendName;
  /** Timed repeats of each measurement after one warm-up (default 5 native, 2 js). */
  repeats?: number;
  /** Model shape overrides (tests use a tiny one). */
  model?: Partial<BenchModelShape>;
  /** Prompt length in text tokens (default 32). */
  promptTokens?: number;
  /** DDIM steps per image (default 32). */
  samplerSteps?: number;
  /** Guidance scale of the guided image run (default 3). */
  guidanceScale?: number;
  /** New text tokens of the text run (default 64). */
  newTokens?: number;
  onProgress?: (msg: string) => void;
}

export interface SampleBenchResult {
  backend: string;
  threads: number;
  shape: BenchModelShape & { mlpHidden: number; encoder: string; patchesPerImage: number };
  blockAndHeadParams: number;
  workload: {
    promptTokens: number;
    samplerSteps: number;
    sampler: string;
    guidanceScale: number;
    newTokens: number;
    repeats: number;
    /** Transformer evaluations of the image block per image (denoising steps + clean commit). */
    imageBlockEvals: number;
  };
  /** Seconds for one image (named for the default 32 steps; see workload.samplerSteps). */
  imageSeconds32Steps: number;
  imageSeconds32StepsGuided: number;
  /** Milliseconds per new text token (batch 1, KV cache, greedy), prefill excluded. */
  textMsPerToken: number;
  /** Milliseconds of the text run's prompt prefill. */
  textPrefillMs: number;
  textTokensPerSecond: number;
  /** The PyTorch port's figures on the development machine, and theirs ÷ ours (> 1 = faster). */
  pytorchPort: typeof PYTORCH_PORT_SAMPLE;
  speedupImageVsPytorchPort: number;
  speedupImageGuidedVsPytorchPort: number;
  speedupTextVsPytorchPort: number;
  peakRssMb: number;
}

/** Runs the sample bench and returns its figures. */
export async function runSampleBench(opts: SampleBenchOptions = {}): Promise<SampleBenchResult> {
  const be = opts.backend ? await useBackend(opts.backend) : backend();
  const isJs = be.name !== "native";
  const progress = opts.onProgress ?? (() => {});
  const config = benchConfig(opts.model);
  const model = new Transfusion(config, new Rng(1234));
  const promptTokens = opts.promptTokens ?? 32;
  const samplerSteps = opts.samplerSteps ?? 32;
  const guidanceScale = opts.guidanceScale ?? 3;
  const newTokens = opts.newTokens ?? 64;
  const repeats = opts.repeats ?? (isJs ? 2 : 5);
  const schedule = cosineSchedule({ T: config.diffusionSteps });
  const sampler = new DdimSampler(schedule, { steps: samplerSteps });
  const prompt = { segments: [{ text: randomText(new Rng(5), promptTokens, config.vocab) }] };

  /** Returns seconds to generate one image (what `generate` does for text-to-image). */
  const image = (guidance: number | null, seed: number): Promise<number> =>
    timeSecondsAsync(() =>
      generateBatch(model, [prompt], new Float32Array(0), BENCH_SPECIAL, {
        sampling: GREEDY,
        maxNewTokens: 1,
        images: "force",
        stopAfterImage: true,
        maxImages: 1,
        sampler,
        guidanceScale: guidance,
        seed,
      }),
    );

  /** Returns [prefill ms, ms per new token] of greedy decoding with the KV cache. */
  const timeText = async (): Promise<[number, number]> => {
    const state = new DecodeState(model, 1, promptTokens + newTokens);
    const banned = new Uint8Array(config.vocab);
    banned[BENCH_SPECIAL.boiId] = 1;
    banned[BENCH_SPECIAL.eoiId] = 1;
    banned[BENCH_SPECIAL.padId] = 1;
    const rng = new Rng(1);
    const t0 = process.hrtime.bigint();
    let logits = await state.prefill([prompt], new Float32Array(0), BENCH_SPECIAL).readF32();
    const t1 = process.hrtime.bigint();
    for (let i = 0; i < newTokens; i++) {
      const next = Int32Array.of(sampleToken(logits, GREEDY, rng, banned));
      logits = await state.appendTokens(next).readF32();
    }
    const t2 = process.hrtime.bigint();
    return [Number(t1 - t0) / 1e6, Number(t2 - t1) / 1e6 / newTokens];
  };

  const plain: number[] = [];
  const guided: number[] = [];
  const prefill: number[] = [];
  const perToken: number[] = [];
  progress("warm-up");
  await image(null, 0);
  await image(guidanceScale, 0);
  await timeText();
  for (let r = 0; r < repeats; r++) {
    plain.push(await image(null, r + 1));
    progress(`image ${r + 1}/${repeats}: ${plain[r]!.toFixed(3)} s`);
    guided.push(await image(guidanceScale, r + 1));
    progress(`guided image ${r + 1}/${repeats}: ${guided[r]!.toFixed(3)} s`);
    const [p, t] = await timeText();
    prefill.push(p);
    perToken.push(t);
    progress(`text ${r + 1}/${repeats}: ${t.toFixed(2)} ms/token, prefill ${p.toFixed(1)} ms`);
  }
  const imageSeconds = median(plain);
  const imageSecondsGuided = median(guided);
  const textMsPerToken = median(perToken);
  const P = PYTORCH_PORT_SAMPLE;
  return {
    backend: be.name,
    threads: be.threads,
    shape: {
      ...modelShape(config),
      patchesPerImage: patchesPerImage(config),
    },
    blockAndHeadParams: blockAndHeadParams(model),
    workload: {
      promptTokens,
      samplerSteps,
      sampler: "ddim",
      guidanceScale,
      newTokens,
      repeats,
      imageBlockEvals: samplerSteps + 1,
    },
    imageSeconds32Steps: imageSeconds,
    imageSeconds32StepsGuided: imageSecondsGuided,
    textMsPerToken,
    textPrefillMs: median(prefill),
    textTokensPerSecond: 1000 / textMsPerToken,
    pytorchPort: P,
    speedupImageVsPytorchPort: P.imageSeconds32Steps / imageSeconds,
    speedupImageGuidedVsPytorchPort: P.imageSeconds32StepsGuided / imageSecondsGuided,
    speedupTextVsPytorchPort: P.textMsPerToken / textMsPerToken,
    peakRssMb: peakRssMb(),
  };
}
