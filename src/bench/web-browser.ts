/**
 * The browser side of `transfusion bench web` (./web.ts): finds and launches headless Chromium
 * through playwright-core, then drives the served app in a fresh context and times it in the
 * page with performance.now(): the first image from the start of navigation, then presses of
 * Draw (guided, then guidance 0) and of Continue (Max images 0), each until the page shows the
 * result. It returns the raw times, the settings the page started with, and the continuation
 * the page wrote, for Node to replay.
 */
import { existsSync } from "node:fs";
import type { Browser, Page } from "playwright-core";

/** Environment variable naming the Chromium to drive (as in the browser tests). */
export const CHROMIUM_ENV = "TRANSFUSION_CHROMIUM";
/** Debian's Chromium, which `apt-get install chromium` puts there. */
export const DEFAULT_CHROMIUM = "/usr/bin/chromium";
/** How long any one wait for the page may take before the bench gives up. */
const PAGE_TIMEOUT_MS = 15 * 60_000;

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

/**
 * Chromium's flags for headless runs here (the bench and the browser tests). --no-sandbox:
 * Chromium refuses to start its sandbox as root, as in containers and CI.
 */
export const HEADLESS_CHROMIUM_ARGS: readonly string[] = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/**
 * The flags of a headless Chromium that offers WebGPU without a GPU: its software adapter
 * (SwiftShader, a CPU implementation: correct and slow). HEADLESS_CHROMIUM_ARGS without
 * --disable-gpu, which would take WebGPU away.
 */
export const WEBGPU_CHROMIUM_ARGS: readonly string[] = [
  ...HEADLESS_CHROMIUM_ARGS.filter((a) => a !== "--disable-gpu"),
  "--enable-unsafe-webgpu",
  "--use-webgpu-adapter=swiftshader",
];

/** Returns a headless Chromium. */
export async function launch(executablePath: string): Promise<Browser> {
  const { chromium } = await playwright();
  return chromium.launch({ executablePath, args: [...HEADLESS_CHROMIUM_ARGS] });
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
export interface BrowserRun {
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
export async function runBrowser(
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
      // The js backend, whatever the browser offers: Node replays the page's work on js.
      await page.goto(new URL("?backend=js", url).href);
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
