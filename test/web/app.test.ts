// The web app in a real browser (Debian's Chromium, headless): the page loads a checkpoint
// trained here, draws with previews, captions a dropped image and continues a prompt, and
// every result is compared with what the library computes in Node on the js backend for the
// same checkpoint, settings and seed. The comparison is exact on the page's js backend
// (`?backend=js`): the js backend does the same float32 arithmetic in V8 whether V8 runs in
// Node or in Chromium, and the images cross the worker boundary and a canvas as 8-bit pixels,
// which putImageData/getImageData keep unchanged for opaque pixels. On WebGPU (Chromium's
// software adapter) the drawing agrees within float32 rounding.
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import { WEBGPU_CHROMIUM_ARGS } from "../../src/bench/web-browser.js";
import { getDataset } from "../../src/data/datasets/index.js";
import { type Image, writePng } from "../../src/data/image.js";
import { TransfusionPipeline } from "../../src/generate/pipeline.js";
import { setBackend } from "../../src/tensor/backends/index.js";
import { runTraining } from "../../src/train/run.js";
import { tinyRunOptions } from "../helpers.js";
import {
  buildApp,
  canvasImage,
  chromiumSkip,
  cli,
  collectErrors,
  launchChromium,
  serve,
  startCommand,
  waitReady,
} from "./browser.js";

const skip = chromiumSkip;
const tmp = mkdtempSync(join(tmpdir(), "tf-web-app-"));
const run = join(tmp, "run");
const webDir = join(tmp, "web");
const CARD = "# Tiny shapes model\n\nTrained for three steps by test/web/app.test.ts.\n";
let browser: Browser | null = null;
let server: ChildProcess | null = null;
let url = "";
let pipeline: TransfusionPipeline;

before(async () => {
  setBackend("js");
  // 64 images: encoding the whole dataset through the VAE would take minutes on js.
  await runTraining({ ...tinyRunOptions("shapes", run, 3), maxImages: 64 });
  writeFileSync(join(run, "MODEL_CARD.md"), CARD);
  pipeline = TransfusionPipeline.load(join(run, "checkpoint"));
  await buildApp(webDir);
  const s = await serve(["--checkpoint", run, "--port", "0"], { TRANSFUSION_WEB_DIR: webDir });
  server = s.child;
  url = s.match[1]!;
  if (!skip) browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  server?.kill();
  rmSync(tmp, { recursive: true, force: true });
});

/**
 * Returns a page of the app at `at` with the model loaded on `backend` (the page's
 * `?backend=`), and the errors it will report.
 */
async function openApp(
  at: string,
  backend = "js",
  on: Browser = browser!,
): Promise<{ page: Page; errors: string[] }> {
  const page = await on.newPage();
  const errors = collectErrors(page);
  await page.goto(new URL(`?backend=${backend}`, at).href);
  await waitReady(page);
  return { page, errors };
}

/** Returns what the Node pipeline (js backend) draws with the tests' 6 DDPM steps, seed 5. */
async function nodeImage(caption: string, guidance: number | null): Promise<Image> {
  const o = { sampler: "ddpm" as const, steps: 6, guidanceScale: guidance, seed: 5 };
  return (await pipeline.textToImage([caption], o)).images[0]!;
}

/** Sets the image controls of the page. */
async function settings(page: Page, s: { steps: number; guidance: number; seed: number }) {
  await page.fill('[data-testid="steps"]', String(s.steps));
  await page.fill('[data-testid="guidance"]', String(s.guidance));
  await page.fill('[data-testid="seed"]', String(s.seed));
  await page.selectOption('[data-testid="sampler"]', "ddpm");
}

/** Returns the final image after pressing `button`, and the preview steps painted before it. */
async function drawWith(page: Page, button: string): Promise<{ image: Image; steps: number[] }> {
  // In-page code as source text: the tests compile without the DOM's types.
  await page.evaluate(`(() => {
    const canvas = document.querySelector('[data-testid="image"]');
    const steps = [];
    window.previewSteps = steps;
    new MutationObserver(() => {
      if (canvas.dataset.final === "false" && canvas.dataset.step)
        steps.push(Number(canvas.dataset.step));
    }).observe(canvas, { attributes: true, attributeFilter: ["data-step"] });
  })()`);
  await page.click(`[data-testid="${button}"]`);
  await page.waitForSelector('[data-testid="image"][data-final="true"]');
  const steps = (await page.evaluate("window.previewSteps")) as number[];
  return { image: await canvasImage(page, '[data-testid="image"]', 3), steps };
}

test("the page loads the checkpoint with no console errors and shows its model card", {
  skip,
}, async () => {
  const { page, errors } = await openApp(url);
  const info = await page.textContent('[data-testid="model-info"]');
  assert.match(info!, /Checkpoint.*\/model\//);
  assert.match(info!, /Training step3/);
  assert.match(info!, /Images32×32, colour/);
  assert.match((await page.textContent('[data-testid="model-card"]'))!, /Tiny shapes model/);
  assert.deepEqual(errors, []);
  await page.close();
});

test("a caption is drawn with previews, pixel for pixel as the Node js backend draws it", {
  skip,
}, async () => {
  const { page, errors } = await openApp(url);
  // Typed with the case and spacing the training captions never had: normalised first.
  await page.fill('[data-testid="prompt"]', "  A large RED   circle ");
  assert.match(
    (await page.textContent('[data-testid="prompt-note"]'))!,
    /Sent as “a large red circle”/,
  );
  await settings(page, { steps: 6, guidance: 3, seed: 5 });
  const first = await drawWith(page, "draw");
  const want = await nodeImage("a large red circle", 3);
  assert.deepEqual(first.image, want);
  assert.ok(new Set(first.image.data).size > 10, "the image is blank");
  assert.deepEqual(first.steps, [1, 2, 3, 4, 5, 6], "a preview at every step of 6");
  assert.match(
    (await page.textContent('[data-testid="status"]'))!,
    /^Drew “a large red circle” \(seed 5\) in \d+\.\d+ s\.$/,
  );
  assert.equal(await page.inputValue('[data-testid="seed"]'), "6", "Draw moves the seed on");

  // "Same seed again" with guidance off: seed 5 again, unguided.
  await page.fill('[data-testid="guidance"]', "0");
  const again = await drawWith(page, "same-seed");
  const unguided = await nodeImage("a large red circle", null);
  assert.deepEqual(again.image, unguided);
  assert.notDeepEqual(again.image, want);
  assert.equal(await page.locator('[data-testid="log"] li').count(), 2);

  // Words the tokenizer cannot write as one token are flagged.
  await page.fill('[data-testid="prompt"]', "a large zebra");
  const unseen = await page.getAttribute('[data-testid="unseen"]', "data-words");
  assert.deepEqual(unseen!.split(" "), pipelineUnseen("a large zebra"));
  assert.ok(unseen!.includes("zebra"));
  assert.deepEqual(errors, []);
  await page.close();
});

test("on WebGPU (Chromium's software adapter) the page draws what the Node js backend draws, within rounding", {
  skip,
}, async (t) => {
  const gpuBrowser = await launchChromium(WEBGPU_CHROMIUM_ARGS);
  try {
    const { page, errors } = await openApp(url, "webgpu", gpuBrowser);
    assert.match((await page.textContent('[data-testid="model-info"]'))!, /Runs onWebGPU \(/);
    await page.fill('[data-testid="prompt"]', "a large red circle");
    await settings(page, { steps: 6, guidance: 3, seed: 5 });
    const drawn = await drawWith(page, "draw");
    const want = await nodeImage("a large red circle", 3);
    assert.deepEqual(drawn.steps, [1, 2, 3, 4, 5, 6], "a preview at every step of 6");
    // Float32 sums in another order move a value across a rounding edge now and then.
    let worst = 0;
    let differing = 0;
    want.data.forEach((v, i) => {
      const d = Math.abs(v - drawn.image.data[i]!);
      worst = Math.max(worst, d);
      if (d > 0) differing++;
    });
    t.diagnostic(`${differing} of ${want.data.length} values differ, by at most ${worst}`);
    assert.ok(worst <= 2, `a pixel value differs by ${worst} levels`);
    assert.ok(differing <= want.data.length / 100, `${differing} values differ`);
    assert.deepEqual(errors, []);
    await page.close();
  } finally {
    await gpuBrowser.close();
  }
});

function pipelineUnseen(text: string): string[] {
  return text.split(" ").filter((w) => pipeline.tokenizer.encode(` ${w}`).length > 1);
}

test("an uploaded image gets the caption `transfusion caption` writes", { skip }, async () => {
  const png = join(tmp, "shape.png");
  const example = (await getDataset("shapes")).split("test").get(3);
  await writePng(png, example.image);
  const r = cli(["caption", "--checkpoint", run, "--backend", "js", "--json", png]);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  const expected = JSON.parse(lines[lines.length - 1]!).captions[0].caption as string;

  const { page, errors } = await openApp(url);
  await page.setInputFiles('[data-testid="upload"]', png);
  await page.waitForFunction(
    `document.querySelector('[data-testid="status"]').textContent.startsWith("Captioned")`,
  );
  // The browser decoded the PNG to exactly the pixels sharp decodes.
  assert.deepEqual(await canvasImage(page, "#uploaded", 3), example.image);
  assert.equal(await page.textContent('[data-testid="caption"]'), expected);
  assert.deepEqual(errors, []);
  await page.close();
});

test("a prompt is continued with the text and images pipeline.generate writes", {
  skip,
}, async () => {
  const { page, errors } = await openApp(url);
  await settings(page, { steps: 4, guidance: 3, seed: 3 });
  await page.fill('[data-testid="continue-prompt"]', "a small");
  await page.fill("#max-tokens", "12");
  await page.fill("#max-images", "1");
  await page.fill("#temperature", "0.8");
  await page.click('[data-testid="continue"]');
  await page.waitForSelector('[data-testid="document"][data-done="true"]');
  const shown = await page.$$eval('[data-testid="document"] > *', (nodes) =>
    nodes.map((n) =>
      n.tagName === "CANVAS"
        ? { canvas: n.id || "" }
        : { text: n.textContent ?? "", given: n.className === "given" },
    ),
  );
  const parts = await pipeline.generate(
    { parts: [{ text: "a small" }] },
    {
      sampler: "ddpm",
      steps: 4,
      guidanceScale: 3,
      seed: 3,
      sampling: { temperature: 0.8, topK: 0, topP: 0.95 },
      maxNewTokens: 12,
      maxImages: 1,
    },
  );
  assert.deepEqual(shown[0], { text: "a small", given: true });
  const images: Image[] = [];
  for (const [i, n] of shown.slice(1).entries()) {
    if ("canvas" in n) {
      images.push(await canvasImage(page, `[data-testid="document"] > :nth-child(${i + 2})`, 3));
    }
  }
  assert.deepEqual(
    shown.slice(1).map((n) => ("text" in n ? n.text : "image")),
    parts.map((q) => (q.image ? "image" : q.text)),
  );
  assert.deepEqual(
    images,
    parts.flatMap((q) => (q.image ? [q.image] : [])),
  );
  assert.deepEqual(errors, []);
  await page.close();
});

test("serve hands out the app and the checkpoint's files, and nothing else", async () => {
  const get = (path: string, init?: RequestInit) => fetch(new URL(path, url), init);
  const page = await get("/");
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-type")!, /^text\/html/);
  assert.match(await page.text(), /data-testid="draw"/);
  assert.equal(
    (await get("main.js")).headers.get("content-type"),
    "text/javascript; charset=utf-8",
  );
  const index = (await (await get("model/files.json")).json()) as { files: string[] };
  assert.deepEqual(index.files.sort(), [
    "MODEL_CARD.md",
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "vae.json",
    "vae.safetensors",
  ]);
  const weights = await get("model/model.safetensors");
  assert.deepEqual(
    new Uint8Array(await weights.arrayBuffer()),
    new Uint8Array(readFileSync(join(run, "checkpoint", "model.safetensors"))),
  );
  for (const hidden of [
    "model/train_state.safetensors",
    "model/../package.json",
    "/%2E%2E/package.json",
    "model/..%2F..%2Fpackage.json",
    "web/main.js",
  ]) {
    assert.equal((await get(hidden)).status, 404, hidden);
  }
  assert.equal((await get("/", { method: "POST" })).status, 405);
  const head = await get("model/config.json", { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(
    Number(head.headers.get("content-length")),
    readFileSync(join(run, "checkpoint", "config.json")).length,
  );
  // Without --checkpoint it serves the shipped model (test/cli/shipped.test.ts covers the model).
  const help = cli(["serve", "--help"]);
  assert.match(
    help.stdout,
    /Without --checkpoint it uses the model shipped with the package, models\/demo/,
  );
  const port = cli(["serve", "--checkpoint", run, "--port", "70000"]);
  assert.match(port.stderr, /--port must be an integer from 0 to 65535, got "70000"/);
});

test("export-web writes a folder that a plain static file server hosts", { skip }, async () => {
  const out = join(tmp, "site");
  const env = { TRANSFUSION_WEB_DIR: webDir };
  const r = cli(["export-web", "--checkpoint", run, "--out", out, "--json"], env);
  assert.equal(r.status, 0, r.stderr);
  for (const f of ["index.html", "main.js", "worker.js", "model/config.json", "model/files.json"]) {
    assert.ok(existsSync(join(out, f)), f);
  }
  assert.ok(!existsSync(join(out, "model", "train_state.safetensors")));
  // Again into the same folder: the earlier export's files are replaced, a stranger's kept.
  writeFileSync(join(out, "notes.txt"), "mine");
  assert.equal(cli(["export-web", "--checkpoint", run, "--out", out], env).status, 0);
  assert.equal(readFileSync(join(out, "notes.txt"), "utf8"), "mine");
  const foreign = join(tmp, "foreign");
  mkdirSync(foreign);
  writeFileSync(join(foreign, "index.html"), "someone else's site");
  const refused = cli(["export-web", "--checkpoint", run, "--out", foreign], env);
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /not empty and holds no export-web\.json/);

  // Python's http.server: a static host that knows nothing of transfusion.
  const py = await startCommand(
    "python3",
    ["-u", "-m", "http.server", "--bind", "127.0.0.1", "--directory", out, "0"],
    /port (\d+)/,
  );
  try {
    const { page, errors } = await openApp(`http://127.0.0.1:${py.match[1]}/`);
    assert.match((await page.textContent('[data-testid="model-card"]'))!, /Tiny shapes model/);
    await page.fill('[data-testid="prompt"]', "a small blue square");
    await settings(page, { steps: 5, guidance: 2, seed: 9 });
    const { image } = await drawWith(page, "draw");
    const want = (
      await pipeline.textToImage(["a small blue square"], {
        sampler: "ddpm",
        steps: 5,
        guidanceScale: 2,
        seed: 9,
      })
    ).images[0]!;
    assert.deepEqual(image, want);
    assert.deepEqual(errors, []);
    await page.close();
  } finally {
    py.child.kill();
  }
});
