/**
 * `transfusion bench web`: the web app's speed in a real browser, and the same work in Node in
 * the same run so that the ratios between them are not skewed by a machine whose speed drifts.
 *
 * The page is the built app at `url`, served with the checkpoint `checkpoint` (cli/bench.ts
 * starts `transfusion serve`'s server on a free port in this process), opened in headless
 * Chromium through playwright-core. Everything is timed in the page with performance.now(), at
 * the settings the page starts with (web/index.html and web/main.ts: DDPM, 100 steps, guidance
 * 5, a preview every 5 steps; 64 new tokens at temperature 0.8):
 * - time to first image: from the start of navigation, in a fresh browser context (nothing
 *   cached), to the first image being final, the caption filled in and Draw pressed by a script
 *   the moment the page says the model is ready; so the load, the worker's start and a cold JIT
 *   are included;
 * - per image: the median over `repeats` presses of Draw, from the press to the final image,
 *   guided and then with guidance 0;
 * - text: the median over `repeats` continuations of a prompt with Max images 0 (after one
 *   untimed one), from the press of Continue to the document shown, as tokens per second. The
 *   tokens are counted by replaying the continuation in Node on the js backend, which computes
 *   exactly what the page computes (test/web/app.test.ts holds them equal); the replay's text is
 *   checked against the page's.
 * Then the same images (previews decoded as often as the page asks for them) and the same
 * continuation are timed in Node, on the js backend and on native, after one warm-up each.
 *
 * Nothing is asserted about speed; the figures are medians over repeats on a machine that may be
 * busy, so read them against each other, not alone.
 *
 * This module runs the bench in that order; the page is driven from ./web-browser.ts, Node's
 * side is ./web-node.ts, and the reported figures are ./web-report.ts.
 */
import { loadPipeline } from "../generate/pipeline.js";
import { type BackendName, backend, setBackend } from "../tensor/backends/index.js";
import { type BrowserRun, checkBrowserBench, launch, runBrowser } from "./web-browser.js";
import { continuationTokens, runNode } from "./web-node.js";
import { ratios, times, type WebBenchResult, type WebBenchWorkload } from "./web-report.js";

export {
  CHROMIUM_ENV,
  checkBrowserBench,
  chromiumPath,
  DEFAULT_CHROMIUM,
} from "./web-browser.js";
export type {
  WebBenchRatios,
  WebBenchResult,
  WebBenchTimes,
  WebBenchWorkload,
} from "./web-report.js";

/** The caption drawn (the README's example for the shipped model). */
export const WEB_BENCH_CAPTION = "a large red circle on the left";
/** The start of the document continued for the text figure. */
export const WEB_BENCH_PROMPT = "Call me Ishmael. Some years ago";

export interface WebBenchOptions {
  /** The page: the built web app served with `checkpoint`. */
  url: string;
  /** The checkpoint folder the page serves, loaded again in Node for the comparison. */
  checkpoint: string;
  /** Timed repeats of each measurement (default 5). */
  repeats?: number;
  /** Time Node on this backend only (default both js and native; native when it loads). */
  backend?: BackendName;
  /** The Chromium executable (default $TRANSFUSION_CHROMIUM, else /usr/bin/chromium). */
  chromium?: string;
  caption?: string;
  prompt?: string;
  onProgress?: (msg: string) => void;
}

/** Runs the web bench against the page at `opts.url` and returns its figures. */
export async function runWebBench(opts: WebBenchOptions): Promise<WebBenchResult> {
  const progress = opts.onProgress ?? (() => {});
  const repeats = opts.repeats ?? 5;
  if (!Number.isInteger(repeats) || repeats < 1)
    throw new Error(`bench web: repeats must be an integer ≥ 1, got ${repeats}`);
  const caption = opts.caption ?? WEB_BENCH_CAPTION;
  const executable = await checkBrowserBench(opts.chromium);
  const previous = backend().name;
  // Loaded before the browser starts, so that a checkpoint Node cannot read fails first.
  const nodeJs = loadPipeline(opts.checkpoint);

  const browser = await launch(executable);
  let page: BrowserRun;
  try {
    page = await runBrowser(
      browser,
      opts.url,
      caption,
      opts.prompt ?? WEB_BENCH_PROMPT,
      repeats,
      progress,
    );
  } finally {
    await browser.close();
  }

  const s = page.settings;
  const partial = {
    caption,
    sampler: s.sampler,
    steps: s.steps,
    guidance: s.guidance,
    // As web/main.ts asks: about twenty previews per image.
    previewEvery: Math.max(1, Math.ceil(s.steps / 20)),
    prompt: page.prompt,
    maxTokens: s.maxTokens,
    temperature: s.temperature,
    seed: s.seed,
    repeats,
  };
  setBackend("js");
  const replay = await continuationTokens(nodeJs, partial);
  if (replay.text !== page.continuation) {
    throw new Error(
      `bench web: the page continued “${page.prompt}” with “${page.continuation}” but Node's js backend with “${replay.text}”; the tokens cannot be counted`,
    );
  }
  const workload: WebBenchWorkload = { ...partial, continuationTokens: replay.tokens };
  const browserTimes = times(
    {
      imageSecondsGuided: page.imageSecondsGuided,
      imageSeconds: page.imageSeconds,
      textSeconds: page.textSeconds,
    },
    replay.tokens,
  );

  const node: WebBenchResult["node"] = { js: null, native: null };
  try {
    for (const name of ["js", "native"] as const) {
      if (opts.backend !== undefined && opts.backend !== name) continue;
      try {
        setBackend(name);
      } catch (err) {
        if (opts.backend === name) throw err;
        progress(`node ${name}: skipped (${(err as Error).message})`);
        continue;
      }
      node[name] = await runNode(name, opts.checkpoint, workload, caption, progress);
    }
  } finally {
    setBackend(previous);
  }
  return {
    backend: "js",
    threads: 1,
    browser: page.browser,
    checkpoint: opts.checkpoint,
    workload,
    readySeconds: page.readySeconds,
    firstImageSeconds: page.firstImageSeconds,
    browserTimes,
    node,
    ratios: {
      vsNodeJs: ratios(browserTimes, node.js),
      vsNative: ratios(browserTimes, node.native),
    },
  };
}
