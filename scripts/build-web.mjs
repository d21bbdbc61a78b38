#!/usr/bin/env node
// Builds the web app: web/main.ts (the page) and web/worker.ts (the model's Web Worker) bundled
// by esbuild for the browser, with index.html and style.css beside them, into dist/web/ (or the
// folder given as the first argument). `transfusion serve` and `export-web` ship that folder.
// Run by `npm run build` after tsc; test/web builds into a temporary folder with buildWeb().
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/**
 * Returns the output folder once the app is built into it (emptied first). Bundles are minified
 * unless `minify` is false; esbuild's errors (an import the browser cannot have, such as a
 * Node module) fail the build.
 */
export async function buildWeb(outDir = join(ROOT, "dist", "web"), { minify = true } = {}) {
  const { build } = await import("esbuild");
  const out = resolve(outDir);
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  await build({
    entryPoints: { main: join(ROOT, "web", "main.ts"), worker: join(ROOT, "web", "worker.ts") },
    outdir: out,
    bundle: true,
    platform: "browser",
    format: "esm",
    target: "es2022",
    minify,
    legalComments: "none",
    logLevel: "warning",
  });
  for (const f of ["index.html", "style.css"]) copyFileSync(join(ROOT, "web", f), join(out, f));
  return out;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = await buildWeb(process.argv[2]);
  console.log(`web app built into ${out}`);
}
