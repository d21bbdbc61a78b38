// `transfusion bench web`: its argument errors, and one quick run (--repeats 1) against a tiny
// checkpoint trained here, served with the app built from source, in Debian's Chromium. Every
// reported figure must be present, finite and positive and agree with the others; speed is
// measured, never asserted.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import type { WebBenchResult, WebBenchTimes } from "../../src/bench/web.js";
import { setBackend } from "../../src/tensor/backends/index.js";
import { runTraining } from "../../src/train/run.js";
import { tinyRunOptions } from "../helpers.js";
import { buildApp, chromiumSkip, cli } from "../web/browser.js";

const tmp = mkdtempSync(join(tmpdir(), "tf-bench-web-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

test("bench web refuses bad flags and says what a missing browser needs", () => {
  const repeats = cli(["bench", "web", "--repeats", "0"]);
  assert.equal(repeats.status, 1);
  assert.match(repeats.stderr, /--repeats must be an integer ≥ 1, got "0"/);
  const missing = join(tmp, "nothing");
  const checkpoint = cli(["bench", "web", "--checkpoint", missing]);
  assert.equal(checkpoint.status, 1);
  assert.match(checkpoint.stderr, /nothing: no checkpoint here/);
  const chromium = cli(["bench", "web"], { TRANSFUSION_CHROMIUM: join(tmp, "no-chromium") });
  assert.equal(chromium.status, 1);
  assert.match(chromium.stderr, /Chromium is not at .*no-chromium/);
  assert.match(chromium.stderr, /`npm ci`/);
  assert.match(chromium.stderr, /`apt-get install chromium`/);
  const help = cli(["bench", "web", "--help"]);
  for (const flag of ["--checkpoint", "--repeats", "--backend", "--json"])
    assert.match(help.stdout, new RegExp(`${flag}\\b`));
  assert.match(help.stdout, /Without --checkpoint it uses the model shipped with the package/);
});

/** Asserts every named figure is a finite number > 0. */
function positive(obj: object, keys: string[], where: string): void {
  for (const k of keys) {
    const v = (obj as Record<string, unknown>)[k];
    assert.ok(typeof v === "number" && Number.isFinite(v) && v > 0, `${where}.${k} = ${v}`);
  }
}

/** Asserts one place's medians are positive and are the medians of its single runs. */
function checkTimes(t: WebBenchTimes, tokens: number, where: string): void {
  positive(t, ["imageSecondsGuided", "imageSeconds", "textTokensPerSecond"], where);
  assert.deepEqual(t.runs.imageSecondsGuided, [t.imageSecondsGuided]);
  assert.deepEqual(t.runs.imageSeconds, [t.imageSeconds]);
  assert.equal(t.runs.textSeconds.length, 1);
  assert.ok(Math.abs(t.textTokensPerSecond * t.runs.textSeconds[0]! - tokens) < 1e-6 * tokens);
}

test("bench web --repeats 1 measures the page and Node (tiny checkpoint)", {
  skip: chromiumSkip,
}, async () => {
  setBackend("js");
  const run = join(tmp, "run");
  await runTraining({ ...tinyRunOptions("shapes", run, 2), maxImages: 32 });
  const webDir = await buildApp(join(tmp, "web"));
  const r = cli(["bench", "web", "--checkpoint", run, "--repeats", "1", "--json"], {
    TRANSFUSION_WEB_DIR: webDir,
  });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  const res = JSON.parse(lines[lines.length - 1]!) as WebBenchResult;
  assert.equal(res.backend, "js");
  assert.match(res.browser, /^chromium \d+/);
  assert.equal(res.checkpoint, join(run, "checkpoint"));
  // The page's own defaults (web/index.html), read from its controls.
  const w = res.workload;
  assert.deepEqual(
    { ...w, continuationTokens: 0 },
    {
      caption: "a large red circle on the left",
      sampler: "ddpm",
      steps: 100,
      guidance: 5,
      previewEvery: 5,
      // Lowercased as the page sends it to a model trained on shapes captions only.
      prompt: "call me ishmael. some years ago",
      maxTokens: 64,
      temperature: 0.8,
      seed: 0,
      continuationTokens: 0,
      repeats: 1,
    },
  );
  assert.ok(w.continuationTokens >= 1 && w.continuationTokens <= 64);
  positive(res, ["readySeconds", "firstImageSeconds"], "result");
  assert.ok(res.firstImageSeconds > res.readySeconds, "the first image comes after the load");
  checkTimes(res.browserTimes, w.continuationTokens, "browser");
  const js = res.node.js!;
  checkTimes(js, w.continuationTokens, "node.js");
  assert.equal(js.threads, 1);
  const ratio = res.ratios.vsNodeJs!;
  assert.equal(ratio.imageGuided, res.browserTimes.imageSecondsGuided / js.imageSecondsGuided);
  assert.equal(ratio.image, res.browserTimes.imageSeconds / js.imageSeconds);
  assert.equal(ratio.text, js.textTokensPerSecond / res.browserTimes.textTokensPerSecond);
  // Native runs when the addon is built; its token count may differ from js's, so only the
  // images are checked against each other.
  assert.equal(res.node.native === null, res.ratios.vsNative === null);
  if (res.node.native) {
    positive(res.node.native, ["threads", "imageSecondsGuided", "textTokensPerSecond"], "native");
    assert.equal(
      res.ratios.vsNative!.imageGuided,
      res.browserTimes.imageSecondsGuided / res.node.native.imageSecondsGuided,
    );
  }
});
