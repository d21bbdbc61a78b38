/**
 * The Node side of `transfusion bench web` (./web.ts): the page's work timed in this process on
 * one backend, at the settings the page started with (web/worker.ts takes them the same way),
 * after one warm-up; and the page's continuation replayed through `generateBatch` on the js
 * backend, which computes exactly what the page computes, to count its tokens.
 */
import { createSampler } from "../diffusion/config.js";
import { cosineSchedule } from "../diffusion/schedule.js";
import { generateBatch } from "../generate/generate.js";
import { loadPipeline, type TransfusionPipeline } from "../generate/pipeline.js";
import type { TextSampling } from "../generate/sampling.js";
import { type BackendName, setBackend } from "../tensor/backends/index.js";
import { timeSecondsAsync } from "./stats.js";
import { times, type WebBenchTimes, type WebBenchWorkload } from "./web-report.js";

/** The text sampling of the page's continuations (web/worker.ts; as `transfusion complete`). */
const topP = 0.95;

/** The page's image settings as the pipeline takes them (web/worker.ts). */
function imageOptions(
  w: Pick<WebBenchWorkload, "sampler" | "steps" | "guidance">,
  guided: boolean,
  seed: number,
) {
  return {
    sampler: w.sampler as "ddpm" | "ddim" | "flow-euler",
    steps: w.steps,
    guidanceScale: guided && w.guidance > 0 ? w.guidance : null,
    seed,
    onImageStep: () => {},
  };
}

function textSampling(w: Pick<WebBenchWorkload, "temperature">): TextSampling {
  return { temperature: w.temperature, topK: 0, topP };
}

/**
 * Returns the text tokens the continuation samples on the active backend and their decoded
 * text: `pipeline.generate` with images off, replayed through `generateBatch` to see the tokens.
 */
export async function continuationTokens(
  p: TransfusionPipeline,
  w: Omit<WebBenchWorkload, "continuationTokens">,
): Promise<{ tokens: number; text: string }> {
  const c = p.config;
  const [row] = await generateBatch(
    p.model,
    [{ segments: [{ text: p.tokenizer.encode(w.prompt) }] }],
    new Float32Array(0),
    p.special,
    {
      sampling: textSampling(w),
      maxNewTokens: w.maxTokens,
      images: "forbid",
      stopAfterImage: false,
      maxImages: 0,
      // Never used with images forbidden, but it must fit the model.
      sampler: createSampler(
        { kind: c.objective === "flow" ? "flow-euler" : "ddpm", steps: w.steps },
        cosineSchedule({ T: c.diffusionSteps }),
        c.objective,
      ),
      guidanceScale: null,
      seed: w.seed,
    },
  );
  const ids = row!.parts.flatMap((q) => ("text" in q ? q.text : []));
  return {
    tokens: ids.length,
    text: p.tokenizer.decode(ids.filter((t) => t !== p.special.eodId)),
  };
}

/** Returns the Node figures on backend `name` for the page's workload. */
export async function runNode(
  name: BackendName,
  checkpoint: string,
  w: WebBenchWorkload,
  caption: string,
  progress: (msg: string) => void,
): Promise<WebBenchTimes & { threads: number }> {
  const be = setBackend(name);
  const p = loadPipeline(checkpoint);
  const draw = (guided: boolean, seed: number) =>
    timeSecondsAsync(() =>
      p.textToImage([caption], {
        ...imageOptions(w, guided, seed),
        previewEvery: w.previewEvery,
        onPreview: () => {},
      }),
    );
  const { tokens } = await continuationTokens(p, w);
  const doc = { parts: [{ text: w.prompt }] };
  const write = () =>
    timeSecondsAsync(() =>
      p.generate(doc, {
        ...imageOptions(w, true, w.seed),
        sampling: textSampling(w),
        maxNewTokens: w.maxTokens,
        maxImages: 0,
      }),
    );
  progress(`node ${name}: warm-up`);
  await draw(true, w.seed);
  await write();
  const runs = { imageSecondsGuided: [] as number[], imageSeconds: [] as number[] };
  const textSeconds: number[] = [];
  for (let r = 0; r < w.repeats; r++) {
    runs.imageSecondsGuided.push(await draw(true, w.seed + 1 + r));
    progress(
      `node ${name}: guided image ${r + 1}/${w.repeats}: ${runs.imageSecondsGuided[r]!.toFixed(2)} s`,
    );
  }
  for (let r = 0; r < w.repeats; r++) {
    runs.imageSeconds.push(await draw(false, w.seed + 1 + w.repeats + r));
    progress(
      `node ${name}: unguided image ${r + 1}/${w.repeats}: ${runs.imageSeconds[r]!.toFixed(2)} s`,
    );
  }
  for (let r = 0; r < w.repeats; r++) {
    textSeconds.push(await write());
    progress(`node ${name}: continuation ${r + 1}/${w.repeats}: ${textSeconds[r]!.toFixed(3)} s`);
  }
  return { threads: be.threads, ...times({ ...runs, textSeconds }, tokens) };
}
