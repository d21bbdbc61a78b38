#!/usr/bin/env node
// Builds the native addon (native/*.cc → build/Release/transfusion_native.node) with node-gyp.
// Runs at `npm install`. A missing compiler or BLAS must never break the install: without
// --strict a failed build prints one warning and exits 0, and the js backend is used.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const strict = process.argv.includes("--strict");

if (process.env.TRANSFUSION_SKIP_NATIVE === "1") {
  console.log("transfusion: TRANSFUSION_SKIP_NATIVE=1, not building the native backend");
  process.exit(0);
}

// npm exposes its bundled node-gyp through npm_config_node_gyp; fall back to PATH.
const gypJs = process.env.npm_config_node_gyp;
const cmd = gypJs && existsSync(gypJs) ? process.execPath : "node-gyp";
const args = gypJs && existsSync(gypJs) ? [gypJs, "rebuild"] : ["rebuild"];
const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit", env: process.env });
if (r.status !== 0) {
  const why = r.error ? r.error.message : `node-gyp exited with ${r.status}`;
  // Inside a user's node_modules there is no `build:native` script to run: npm rebuild is
  // how they re-run this install step (the same rule as nativeBuildHint in native.ts).
  const installed = root.split(/[\\/]/).includes("node_modules");
  const how = installed
    ? "run `npm rebuild transfusion` in your project"
    : "run `npm run build:native`";
  const msg =
    `transfusion: native backend not built (${why}); the js backend will be used. ` +
    `Install g++ and libopenblas-dev, then ${how}.`;
  if (strict) {
    console.error(msg);
    process.exit(1);
  }
  console.warn(msg);
}
process.exit(0);
