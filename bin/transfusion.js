#!/usr/bin/env node
// Entry point of the `transfusion` command. Runs the compiled CLI from dist/.
import { existsSync } from "node:fs";

const entry = new URL("../dist/cli/main.js", import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write("transfusion: dist/ is missing; run `npm run build` first\n");
  process.exit(1);
}
const { main, releaseDevices } = await import(entry.href);
const code = await main(process.argv.slice(2));
process.exitCode = code;
if (await releaseDevices()) {
  // Dawn (webgpu in Node) keeps the event loop alive while its instance exists: end the
  // process once the output is written.
  await new Promise((ok) => process.stdout.write("", ok));
  await new Promise((ok) => process.stderr.write("", ok));
  process.exit(code);
}
