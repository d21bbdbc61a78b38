#!/usr/bin/env node
// Takes the README's screenshot of the web app: serves the built app (dist/web, from
// `npm run build`) with the shipped model (models/demo) on a free port, opens it in Debian's
// Chromium, headless, through playwright-core (a development dependency), draws
// "a large red circle on the left" at the page's default settings and nothing else, and once the
// image is final writes the 1100×880 viewport to docs/images/web-app.png (or the path given as
// the first argument). TRANSFUSION_CHROMIUM=PATH points it at another Chromium.
import { existsSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const CAPTION = "a large red circle on the left";
// Tall enough for the drawn image and the note under it.
const VIEWPORT = { width: 1100, height: 880 };
const out = resolve(process.argv[2] ?? join(ROOT, "docs", "images", "web-app.png"));
const chromiumPath = process.env.TRANSFUSION_CHROMIUM || "/usr/bin/chromium";

function fail(message) {
  console.error(`screenshot-web: ${message}`);
  process.exit(1);
}

if (!existsSync(join(ROOT, "dist", "cli", "serve.js")) || !existsSync(join(ROOT, "dist", "web"))) {
  fail("the package is not built: run `npm run build` first");
}
if (!existsSync(chromiumPath)) {
  fail(
    `Chromium is not at ${chromiumPath}: \`apt-get install chromium\`, or set TRANSFUSION_CHROMIUM`,
  );
}
let chromium;
try {
  ({ chromium } = await import("playwright-core"));
} catch (err) {
  fail(`playwright-core cannot be imported (${err.message}): run \`npm ci\``);
}
const { startWebServer, webAppDir } = await import(join(ROOT, "dist", "cli", "serve.js"));
const { shippedModelDir } = await import(join(ROOT, "dist", "io", "shipped.js"));
const checkpoint = shippedModelDir();
if (!checkpoint) fail("this checkout holds no shipped model (models/demo)");

const server = await startWebServer({
  webDir: webAppDir(),
  checkpoint,
  host: "127.0.0.1",
  port: 0,
});
const browser = await chromium.launch({
  executablePath: chromiumPath,
  // --no-sandbox: Chromium refuses to start its sandbox as root, as in containers.
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
});
try {
  const page = await browser.newPage({ viewport: VIEWPORT, colorScheme: "light" });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(server.url);
  await page.waitForSelector('[data-testid="status"][data-state="ready"]', { timeout: 120_000 });
  // Typed, so that the page shows how it reads the caption as a visitor would see it.
  await page.locator('[data-testid="prompt"]').pressSequentially(CAPTION);
  await page.click('[data-testid="draw"]');
  await page.waitForSelector('[data-testid="image"][data-final="true"]', { timeout: 300_000 });
  await page.waitForSelector('[data-testid="status"][data-state="ready"]');
  if (errors.length > 0) fail(`the page reported errors:\n${errors.join("\n")}`);
  mkdirSync(dirname(out), { recursive: true });
  await page.screenshot({ path: out });
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
  await server.close();
}
