// The WGSL kernels of src/tensor/backends/webgpu against the js reference, in headless
// Chromium on its SwiftShader WebGPU adapter (a CPU implementation: slow, so the shapes are
// small and odd). The page is cases.ts + page.ts bundled by esbuild and served from
// 127.0.0.1 (WebGPU needs a secure context); each case runs js and GPU on the same inputs in
// the page and returns per-output worst errors, asserted here. Tolerances: see cases.ts.
// Skipped with a message when Chromium or a WebGPU adapter is missing, unless env CI is set.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { build } from "esbuild";
import { type Browser, chromium, type Page } from "playwright-core";
import { WEBGPU_CHROMIUM_ARGS } from "../../src/bench/web-browser.js";
import { CHROMIUM, chromiumSkip, ROOT } from "../web/browser.js";
import { CASES, type Summary } from "./cases.js";
import { MODEL_CASES } from "./model-cases.js";

/** Returns the test page's script: cases.ts and the kernels bundled for the browser. */
async function bundlePage(): Promise<string> {
  const r = await build({
    entryPoints: [join(ROOT, "test", "webgpu", "page.ts")],
    bundle: true,
    platform: "browser",
    format: "esm",
    target: "es2022",
    write: false,
    logLevel: "silent",
  });
  return r.outputFiles[0]!.text;
}

/** Serves the page and its script on 127.0.0.1 (a secure context, unlike file: or about:blank). */
async function servePage(script: string): Promise<{ server: Server; url: string }> {
  const html = `<!doctype html><meta charset="utf-8"><title>webgpu kernels</title><script type="module" src="/page.js"></script>`;
  const server = createServer((req, res) => {
    const js = req.url === "/page.js";
    res.writeHead(200, { "content-type": js ? "text/javascript" : "text/html" });
    res.end(js ? script : html);
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` };
}

let browser: Browser | null = null;
let server: Server | null = null;
let page: Page | null = null;
/** Why the cases cannot run here (no WebGPU adapter), when they cannot. */
let unavailable: string | null = null;
const observed: { name: string; s: Summary }[] = [];

describe("webgpu kernels against js", { skip: chromiumSkip }, () => {
  before(async () => {
    const t0 = Date.now();
    const [script] = await Promise.all([bundlePage()]);
    const served = await servePage(script);
    server = served.server;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      // --no-sandbox: the tests run as root. SwiftShader is Chromium's CPU WebGPU adapter.
      args: [...WEBGPU_CHROMIUM_ARGS],
    });
    page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on("pageerror", (e) => pageErrors.push(e.message));
    await page.goto(served.url);
    await page.waitForFunction("globalThis.webgpuTest !== undefined", null, { timeout: 20_000 });
    try {
      const info = await page.evaluate("globalThis.webgpuTest.init()");
      console.log(`webgpu adapter: ${JSON.stringify(info)} (setup ${Date.now() - t0} ms)`);
    } catch (err) {
      const message = (err instanceof Error ? err.message : String(err)).split("\n")[0]!;
      if (process.env.CI) throw new Error(`CI is set but WebGPU is unavailable: ${message}`);
      unavailable = `no WebGPU adapter in headless Chromium: ${message}`;
    }
    assert.deepEqual(pageErrors, []);
    // The page's case list must be the one these tests were declared from.
    assert.deepEqual(await page.evaluate("globalThis.webgpuTest.cases"), CASES);
    assert.deepEqual(
      await page.evaluate("globalThis.webgpuTest.modelCases"),
      MODEL_CASES.map((c) => c.name),
    );
  });

  after(async () => {
    await browser?.close();
    server?.close();
    if (observed.length) {
      // The worst error per kernel family, relative to the output's largest |value|.
      const worst = new Map<string, number>();
      for (const { name, s } of observed) {
        const family = name.split(" ")[0]!.replace(/,$/, "");
        const rel = s.maxAbsErr / Math.max(s.scale, 1e-30);
        worst.set(family, Math.max(worst.get(family) ?? 0, rel));
      }
      console.log(
        `worst |gpu − js| / max|js| per family: ${[...worst].map(([f, e]) => `${f} ${e.toExponential(1)}`).join(", ")}`,
      );
    }
  });

  const cases = [
    ...CASES.map((name) => ({ name, call: `run(${JSON.stringify(name)})` })),
    ...MODEL_CASES.map(({ name }) => ({ name, call: `runModel(${JSON.stringify(name)})` })),
  ];
  for (const { name, call } of cases) {
    test(name, { timeout: 120_000 }, async (t) => {
      if (unavailable) {
        t.skip(unavailable);
        return;
      }
      const { summaries, errors } = (await page!.evaluate(`globalThis.webgpuTest.${call}`)) as {
        summaries: Summary[];
        errors: string[];
      };
      assert.deepEqual(errors, [], "WebGPU errors");
      for (const s of summaries) {
        observed.push({ name, s });
        t.diagnostic(
          `${s.what}: max |err| ${s.maxAbsErr.toExponential(2)} (max |js| ${s.scale.toPrecision(3)})`,
        );
        assert.equal(s.failure, null, `${name}: ${s.what}${s.failure}`);
      }
    });
  }
});
