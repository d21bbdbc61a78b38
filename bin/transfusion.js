#!/usr/bin/env node
// Entry point of the `transfusion` command. Runs the compiled CLI from dist/.
import { existsSync } from "node:fs";

const entry = new URL("../dist/cli/main.js", import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write("transfusion: dist/ is missing; run `npm run build` first\n");
  process.exit(1);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
