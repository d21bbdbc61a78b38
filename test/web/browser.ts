// Shared by the browser tests: Debian's Chromium driven headless by playwright-core (the
// browser downloads of `npx playwright install` cannot work here), the web app built from
// source into a temporary folder, the CLI run from source, and a tiny trained checkpoint.
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { HEADLESS_CHROMIUM_ARGS } from "../../src/bench/web-browser.js";
import type { Image } from "../../src/data/pixels.js";

export const ROOT = join(import.meta.dirname, "..", "..");
export const CHROMIUM = process.env.TRANSFUSION_CHROMIUM ?? "/usr/bin/chromium";

/**
 * The `skip` option of the browser tests: a message when Chromium is missing, except under CI
 * (env CI set), where its absence must fail the run rather than pass it silently.
 */
export const chromiumSkip: string | false =
  existsSync(CHROMIUM) || process.env.CI
    ? false
    : `Chromium not found at ${CHROMIUM}: install it with \`apt-get install chromium\` (scripts/setup.sh does), or set TRANSFUSION_CHROMIUM`;

/**
 * Returns a headless Chromium started with `args` (default: without WebGPU); throws naming
 * the path when it is missing (under CI).
 */
export async function launchChromium(
  args: readonly string[] = HEADLESS_CHROMIUM_ARGS,
): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is required (CI is set) but ${CHROMIUM} does not exist`);
  }
  // Both flag sets have --no-sandbox: the tests run as root, where Chromium refuses its sandbox.
  return chromium.launch({ executablePath: CHROMIUM, args: [...args] });
}

/** Returns the app built from web/ into `dir` (scripts/build-web.mjs, unminified). */
export async function buildApp(dir: string): Promise<string> {
  const { buildWeb } = (await import(join(ROOT, "scripts", "build-web.mjs"))) as {
    buildWeb: (out: string, o: { minify: boolean }) => Promise<string>;
  };
  return buildWeb(dir, { minify: false });
}

/** The code that runs the CLI from source (src/cli/main.ts) with the arguments after it. */
const CLI_FROM_SOURCE = `import(${JSON.stringify(join(ROOT, "src", "cli", "main.ts"))}).then(async (m) => { process.exitCode = await m.main(process.argv.slice(1)); })`;

/** Returns the exit status and output of `transfusion ...args` run from source (no dist/ needed). */
export function cli(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, ["--import", "tsx", "-e", CLI_FROM_SOURCE, ...args], {
    encoding: "utf8",
    timeout: 120_000,
    env: { ...process.env, ...env },
  });
}

/**
 * Returns a long-running command started from source and the first line of its stdout that
 * `ready` matches (e.g. the URL a server prints); the caller kills it.
 */
export async function startCommand(
  command: string,
  args: string[],
  ready: RegExp,
  env: Record<string, string> = {},
): Promise<{ child: ChildProcess; match: RegExpMatchArray }> {
  const child = spawn(command, args, { env: { ...process.env, ...env } });
  let out = "";
  let err = "";
  child.stderr!.on("data", (d) => {
    err += String(d);
  });
  const match = await new Promise<RegExpMatchArray>((ok, fail) => {
    const timer = setTimeout(
      () => fail(new Error(`no ${ready} within 60 s:\n${out}\n${err}`)),
      60_000,
    );
    child.stdout!.on("data", (d) => {
      out += String(d);
      const m = out.match(ready);
      if (m) {
        clearTimeout(timer);
        ok(m);
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      fail(new Error(`${command} exited with ${code} before printing ${ready}:\n${out}\n${err}`));
    });
  });
  child.removeAllListeners("exit");
  return { child, match };
}

/** Returns `transfusion serve ...args` run from source, and the URL it printed. */
export function serve(args: string[], env: Record<string, string> = {}) {
  return startCommand(
    process.execPath,
    ["--import", "tsx", "-e", CLI_FROM_SOURCE, "serve", ...args],
    /serving .* at (http:\/\/\S+)/,
    env,
  );
}

/** Returns the messages of console errors and uncaught exceptions the page produces. */
export function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => errors.push(`page: ${e.message}`));
  return errors;
}

/** Returns once the page says the model is ready (throws with the page's status otherwise). */
export async function waitReady(page: Page): Promise<void> {
  await page.waitForSelector(
    '[data-testid="status"][data-state="ready"], [data-testid="status"][data-state="error"]',
    {
      timeout: 60_000,
    },
  );
  const state = await page.getAttribute('[data-testid="status"]', "data-state");
  assert.equal(state, "ready", (await page.textContent('[data-testid="status"]')) ?? "");
}

/**
 * Returns the pixels of a canvas as an RGB or grey Image (alpha dropped). In-page code is
 * given as source text: the tests compile without the DOM's types.
 */
export async function canvasImage(page: Page, selector: string, channels: 1 | 3): Promise<Image> {
  const { width, height, rgba } = (await page.evaluate(`(() => {
    const canvas = document.querySelector(${JSON.stringify(selector)});
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    return { width: canvas.width, height: canvas.height, rgba: Array.from(data) };
  })()`)) as { width: number; height: number; rgba: number[] };
  const data = new Uint8Array(width * height * channels);
  for (let i = 0; i < width * height; i++) {
    for (let c = 0; c < channels; c++) data[i * channels + c] = rgba[4 * i + c]!;
  }
  return { width, height, channels, data };
}
