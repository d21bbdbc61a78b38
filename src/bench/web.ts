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
 */
import { existsSync } from "node:fs";
import type { Browser, Page } from "playwright-core";
import { createSampler } from "../diffusion/config.js";
import { cosineSchedule } from "../diffusion/schedule.js";
import { generateBatch } from "../generate/generate.js";
import { loadPipeline, type TransfusionPipeline } from "../generate/pipeline.js";
import type { TextSampling } from "../generate/sampling.js";
import { type BackendName, backend, setBackend } from "../tensor/backends/index.js";
import { median } from "./stats.js";

/** Environment variable naming the Chromium to drive (as in the browser tests). */
export const CHROMIUM_ENV = "TRANSFUSION_CHROMIUM";
/** Debian's Chromium, which `apt-get install chromium` puts there. */
export const DEFAULT_CHROMIUM = "/usr/bin/chromium";
/** The caption drawn (the README's example for the shipped model). */
export const WEB_BENCH_CAPTION = "a large red circle on the left";
/** The start of the document continued for the text figure. */
export const WEB_BENCH_PROMPT = "Call me Ishmael. Some years ago";
/** How long any one wait for the page may take before the bench gives up. */
const PAGE_TIMEOUT_MS = 15 * 60_000;

/** The text sampling of the page's continuations (web/worker.ts; as `transfusion complete`). */
const topP = 0.95;

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

/** What the page is set to when the bench starts, read from its controls. */
export interface WebBenchWorkload {
  caption: string;
  sampler: string;
  steps: number;
  guidance: number;
  previewEvery: number;
  /** The continued prompt as the page sent it (normalised). */
  prompt: string;
  maxTokens: number;
  temperature: number;
  seed: number;
  /** Text tokens each continuation samples (the end-of-document token included when sampled). */
  continuationTokens: number;
  repeats: number;
}

/** Medians of one place the work ran: the page or Node on one backend. */
export interface WebBenchTimes {
  /** Seconds per guided image (median). */
  imageSecondsGuided: number;
  /** Seconds per image with guidance 0 (median). */
  imageSeconds: number;
  /** Text tokens per second of the continuation, its prompt's prefill included (median). */
  textTokensPerSecond: number;
  /** Every timed run, in order. */
  runs: { imageSecondsGuided: number[]; imageSeconds: number[]; textSeconds: number[] };
}

/** Browser time ÷ Node time for the same work (> 1: the browser is slower). */
export interface WebBenchRatios {
  imageGuided: number;
  image: number;
  /** Seconds per text token. */
  text: number;
}

export interface WebBenchResult {
  /** The page's backend: the js kernels in one Web Worker. */
  backend: "js";
  threads: 1;
  /** The browser's name and version as it reports them. */
  browser: string;
  checkpoint: string;
  workload: WebBenchWorkload;
  /** Seconds from the start of navigation to the page saying the model is ready. */
  readySeconds: number;
  /** Seconds from the start of navigation to the first image (load included). */
  firstImageSeconds: number;
  browserTimes: WebBenchTimes;
  /** The same work in Node, per backend; null when not run (--backend, or native not built). */
  node: {
    js: (WebBenchTimes & { threads: number }) | null;
    native: (WebBenchTimes & { threads: number }) | null;
  };
  /** Browser ÷ Node js and browser ÷ native; null where Node did not run on that backend. */
  ratios: { vsNodeJs: WebBenchRatios | null; vsNative: WebBenchRatios | null };
}

/** Returns what a missing piece of the browser bench needs, for its error message. */
function needs(what: string): string {
  return (
    `bench web drives headless Chromium through playwright-core, but ${what}. ` +
    "playwright-core is a development dependency: run `npm ci` in a clone of the repository; " +
    `Chromium comes from \`apt-get install chromium\` (or set ${CHROMIUM_ENV}=PATH to another build)`
  );
}

/** Returns the Chromium executable to drive, or throws naming how to install it. */
export function chromiumPath(given?: string): string {
  const path = given ?? (process.env[CHROMIUM_ENV] || DEFAULT_CHROMIUM);
  if (!existsSync(path)) throw new Error(needs(`Chromium is not at ${path}`));
  return path;
}

/**
 * Returns the Chromium executable once both it and playwright-core are there; throws naming how
 * to install whichever is missing.
 */
export async function checkBrowserBench(chromium?: string): Promise<string> {
  const path = chromiumPath(chromium);
  await playwright();
  return path;
}

/** Returns playwright-core, imported only when a browser bench runs. */
async function playwright(): Promise<typeof import("playwright-core")> {
  try {
    return await import("playwright-core");
  } catch (err) {
    throw new Error(needs(`playwright-core cannot be imported (${(err as Error).message})`));
  }
}

/** Returns a headless Chromium (the flags of test/web/browser.ts). */
async function launch(executablePath: string): Promise<Browser> {
  const { chromium } = await playwright();
  return chromium.launch({
    executablePath,
    // --no-sandbox: Chromium refuses to start its sandbox as root, as in containers.
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

// In-page code is source text: src/ compiles without the DOM's types.

/**
 * Set up before the page's own scripts run: once the status says the model is ready, record the
 * time and the page's settings, fill in the caption and press Draw; record when the image is
 * final. Times are performance.now(), which counts from the start of navigation.
 */
function firstImageScript(caption: string): string {
  return `(() => {
    const bench = { ready: null, firstImage: null, error: null, settings: null };
    window.__bench = bench;
    const $ = (id) => document.querySelector('[data-testid="' + id + '"]');
    document.addEventListener("DOMContentLoaded", () => {
      const status = $("status");
      const image = $("image");
      new MutationObserver(() => {
        if (status.dataset.state === "error") bench.error = status.textContent;
        if (bench.ready !== null || status.dataset.state !== "ready") return;
        bench.ready = performance.now();
        bench.settings = {
          sampler: $("sampler").value,
          steps: Number($("steps").value),
          guidance: Number($("guidance").value),
          seed: Number($("seed").value),
          maxTokens: Number(document.getElementById("max-tokens").value),
          temperature: Number(document.getElementById("temperature").value),
        };
        $("prompt").value = ${JSON.stringify(caption)};
        $("draw").click();
      }).observe(status, { attributes: true, attributeFilter: ["data-state"] });
      new MutationObserver(() => {
        if (bench.firstImage === null && image.dataset.final === "true")
          bench.firstImage = performance.now();
      }).observe(image, { attributes: true, attributeFilter: ["data-final"] });
    });
  })()`;
}

/**
 * Returns in-page code that presses the button `button` and resolves with the milliseconds until
 * `done` (an expression over the page) holds, or rejects with the status when it shows an error.
 */
function timedPress(button: string, done: string): string {
  return `new Promise((resolve, reject) => {
    const status = document.querySelector('[data-testid="status"]');
    const watch = new MutationObserver(() => {
      if (status.dataset.state === "error") {
        watch.disconnect();
        reject(new Error(status.textContent));
      } else if (${done}) {
        watch.disconnect();
        resolve(performance.now() - t0);
      }
    });
    watch.observe(document.body, {
      attributes: true,
      subtree: true,
      attributeFilter: ["data-final", "data-done", "data-state"],
    });
    const t0 = performance.now();
    document.querySelector('[data-testid="${button}"]').click();
  })`;
}

const IMAGE_DONE = `document.querySelector('[data-testid="image"]').dataset.final === "true"`;
const DOCUMENT_DONE = `document.querySelector('[data-testid="document"]').dataset.done === "true"`;

/** The page's figures, its settings, and the continuation it wrote. */
interface BrowserRun {
  browser: string;
  readySeconds: number;
  firstImageSeconds: number;
  settings: {
    sampler: string;
    steps: number;
    guidance: number;
    seed: number;
    maxTokens: number;
    temperature: number;
  };
  prompt: string;
  continuation: string;
  imageSecondsGuided: number[];
  imageSeconds: number[];
  textSeconds: number[];
}

/** Returns the page's figures: first image from navigation, then timed presses. */
async function runBrowser(
  browser: Browser,
  url: string,
  caption: string,
  prompt: string,
  repeats: number,
  progress: (msg: string) => void,
): Promise<BrowserRun> {
  // A fresh context: no cache, no storage, as a first visit.
  const context = await browser.newContext();
  const errors: string[] = [];
  try {
    const page = await context.newPage();
    page.on("pageerror", (e) => errors.push(`page: ${e.message}`));
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(`console: ${m.text()}`);
    });
    const failed = (what: string, err: unknown) =>
      new Error(
        `bench web: ${what} failed in the page: ${(err as Error).message}${errors.length ? `\n${errors.join("\n")}` : ""}`,
      );
    await page.addInitScript(firstImageScript(caption));
    progress("browser: loading the page and drawing the first image");
    try {
      await page.goto(url);
      await page.waitForFunction(
        "window.__bench.firstImage !== null || window.__bench.error",
        null,
        {
          polling: 100,
          timeout: PAGE_TIMEOUT_MS,
        },
      );
    } catch (err) {
      throw failed("the first image", err);
    }
    const first = (await page.evaluate("window.__bench")) as {
      ready: number;
      firstImage: number | null;
      error: string | null;
      settings: BrowserRun["settings"];
    };
    if (first.error !== null || first.firstImage === null)
      throw failed("the first image", new Error(first.error ?? "no image"));
    progress(
      `browser: ready at ${(first.ready / 1000).toFixed(2)} s, first image at ${(first.firstImage / 1000).toFixed(2)} s`,
    );

    const press = async (button: string, done: string, what: string): Promise<number> => {
      try {
        return ((await page.evaluate(timedPress(button, done))) as number) / 1000;
      } catch (err) {
        throw failed(what, err);
      }
    };
    const imageSecondsGuided: number[] = [];
    for (let r = 0; r < repeats; r++) {
      imageSecondsGuided.push(await press("draw", IMAGE_DONE, "a guided image"));
      progress(`browser: guided image ${r + 1}/${repeats}: ${imageSecondsGuided[r]!.toFixed(2)} s`);
    }
    await page.fill('[data-testid="guidance"]', "0");
    const imageSeconds: number[] = [];
    for (let r = 0; r < repeats; r++) {
      imageSeconds.push(await press("draw", IMAGE_DONE, "an unguided image"));
      progress(`browser: unguided image ${r + 1}/${repeats}: ${imageSeconds[r]!.toFixed(2)} s`);
    }
    // Text only, from the seed the page starts with.
    await page.fill('[data-testid="guidance"]', String(first.settings.guidance));
    await page.fill('[data-testid="seed"]', String(first.settings.seed));
    await page.fill("#max-images", "0");
    await page.fill('[data-testid="continue-prompt"]', prompt);
    await press("continue", DOCUMENT_DONE, "a continuation");
    const textSeconds: number[] = [];
    for (let r = 0; r < repeats; r++) {
      textSeconds.push(await press("continue", DOCUMENT_DONE, "a continuation"));
      progress(`browser: continuation ${r + 1}/${repeats}: ${textSeconds[r]!.toFixed(2)} s`);
    }
    const shown = await documentText(page);
    if (errors.length > 0) throw failed("the page", new Error("errors were reported"));
    return {
      browser: `${browser.browserType().name()} ${browser.version()}`,
      readySeconds: first.ready / 1000,
      firstImageSeconds: first.firstImage / 1000,
      settings: first.settings,
      ...shown,
      imageSecondsGuided,
      imageSeconds,
      textSeconds,
    };
  } finally {
    await context.close();
  }
}

/** Returns the continued prompt as the page sent it and the text it continued with. */
async function documentText(page: Page): Promise<{ prompt: string; continuation: string }> {
  return (await page.evaluate(`(() => {
    const nodes = Array.from(document.querySelector('[data-testid="document"]').children);
    return {
      prompt: nodes[0].textContent,
      continuation: nodes.slice(1).map((n) => n.textContent).join(""),
    };
  })()`)) as { prompt: string; continuation: string };
}

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
function continuationTokens(
  p: TransfusionPipeline,
  w: Omit<WebBenchWorkload, "continuationTokens">,
): { tokens: number; text: string } {
  const c = p.config;
  const [row] = generateBatch(
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

/** Returns seconds elapsed while running fn. */
function seconds(fn: () => unknown): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/** Returns the Node figures on backend `name` for the page's workload. */
function runNode(
  name: BackendName,
  checkpoint: string,
  w: WebBenchWorkload,
  caption: string,
  progress: (msg: string) => void,
): WebBenchTimes & { threads: number } {
  const be = setBackend(name);
  const p = loadPipeline(checkpoint);
  const draw = (guided: boolean, seed: number) =>
    seconds(() =>
      p.textToImage([caption], {
        ...imageOptions(w, guided, seed),
        previewEvery: w.previewEvery,
        onPreview: () => {},
      }),
    );
  const tokens = continuationTokens(p, w).tokens;
  const doc = { parts: [{ text: w.prompt }] };
  const write = () =>
    seconds(() =>
      p.generate(doc, {
        ...imageOptions(w, true, w.seed),
        sampling: textSampling(w),
        maxNewTokens: w.maxTokens,
        maxImages: 0,
      }),
    );
  progress(`node ${name}: warm-up`);
  draw(true, w.seed);
  write();
  const runs = { imageSecondsGuided: [] as number[], imageSeconds: [] as number[] };
  const textSeconds: number[] = [];
  for (let r = 0; r < w.repeats; r++) {
    runs.imageSecondsGuided.push(draw(true, w.seed + 1 + r));
    progress(
      `node ${name}: guided image ${r + 1}/${w.repeats}: ${runs.imageSecondsGuided[r]!.toFixed(2)} s`,
    );
  }
  for (let r = 0; r < w.repeats; r++) {
    runs.imageSeconds.push(draw(false, w.seed + 1 + w.repeats + r));
    progress(
      `node ${name}: unguided image ${r + 1}/${w.repeats}: ${runs.imageSeconds[r]!.toFixed(2)} s`,
    );
  }
  for (let r = 0; r < w.repeats; r++) {
    textSeconds.push(write());
    progress(`node ${name}: continuation ${r + 1}/${w.repeats}: ${textSeconds[r]!.toFixed(3)} s`);
  }
  return { threads: be.threads, ...times({ ...runs, textSeconds }, tokens) };
}

/** Returns the medians of timed runs (tokens: of each continuation). */
function times(runs: WebBenchTimes["runs"], tokens: number): WebBenchTimes {
  return {
    imageSecondsGuided: median(runs.imageSecondsGuided),
    imageSeconds: median(runs.imageSeconds),
    textTokensPerSecond: tokens / median(runs.textSeconds),
    runs,
  };
}

/** Returns browser ÷ Node times. */
function ratios(browser: WebBenchTimes, node: WebBenchTimes | null): WebBenchRatios | null {
  if (node === null) return null;
  return {
    imageGuided: browser.imageSecondsGuided / node.imageSecondsGuided,
    image: browser.imageSeconds / node.imageSeconds,
    text: node.textTokensPerSecond / browser.textTokensPerSecond,
  };
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
  const replay = continuationTokens(nodeJs, partial);
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
      node[name] = runNode(name, opts.checkpoint, workload, caption, progress);
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
