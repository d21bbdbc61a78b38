// The browser entry must bundle for a web page: esbuild with platform "browser" refuses Node's
// built-in modules, so any `node:` import, sharp (libvips) or the native addon's loader
// reachable from src/browser.ts fails the build. The control case shows the check has teeth.
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { build, type Message } from "esbuild";

const ROOT = join(import.meta.dirname, "..", "..");

/** Returns esbuild's errors and the files reached when bundling `entry` for the browser. */
async function bundleForBrowser(
  entry: string,
): Promise<{ errors: Message[]; inputs: string[]; code: string }> {
  try {
    const r = await build({
      entryPoints: [join(ROOT, entry)],
      bundle: true,
      platform: "browser",
      format: "esm",
      write: false,
      metafile: true,
      logLevel: "silent",
      absWorkingDir: ROOT,
    });
    return {
      errors: r.errors,
      inputs: Object.keys(r.metafile.inputs),
      code: r.outputFiles[0]!.text,
    };
  } catch (err) {
    return { errors: (err as { errors: Message[] }).errors, inputs: [], code: "" };
  }
}

test("src/browser.ts bundles for the browser without Node, sharp or the native addon", async () => {
  const { errors, inputs, code } = await bundleForBrowser("src/browser.ts");
  assert.deepEqual(
    errors.map((e) => `${e.location?.file}:${e.location?.line}: ${e.text}`),
    [],
    "esbuild could not bundle the browser entry",
  );
  const outside = inputs.filter((f) => !f.startsWith("src/"));
  assert.deepEqual(outside, [], "the browser graph reaches packages outside src/");
  for (const banned of [
    "src/tensor/backends/native.ts",
    "src/tensor/backends/index.ts",
    "src/tensor/atomic-write.ts",
    "src/tensor/safetensors.ts",
    "src/data/image.ts",
    "src/data/tokenizer.ts",
    "src/generate/pipeline.ts",
    "src/io/checkpoint.ts",
  ]) {
    assert.ok(!inputs.includes(banned), `the browser graph reaches ${banned}`);
  }
  assert.ok(inputs.includes("src/generate/pipeline-core.ts"));
  assert.ok(inputs.includes("src/tensor/backends/js.ts"));
  // Node's globals are missing in a page: only guarded uses (globalThis.process?.…) may remain.
  assert.doesNotMatch(code, /(?<![.\w])process\.|\brequire\(|\b__dirname\b|\bBuffer\./);
});

test("the check has teeth: the Node entry does not bundle for the browser", async () => {
  const { errors } = await bundleForBrowser("src/index.ts");
  const text = errors.map((e) => e.text).join("\n");
  assert.match(text, /Could not resolve "node:/);
  assert.match(text, /sharp|node:module/);
});

test("the web app's page and worker bundle for the browser", async () => {
  for (const entry of ["web/main.ts", "web/worker.ts"]) {
    const { errors, inputs } = await bundleForBrowser(entry);
    assert.deepEqual(
      errors.map((e) => e.text),
      [],
      entry,
    );
    assert.ok(!inputs.some((f) => f.includes("backends/native") || f.includes("node_modules")));
  }
});
