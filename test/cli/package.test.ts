// The package as an npm user gets it: a licence, the README's images inside it, a native-build
// hint that works inside their project, and a Library snippet they can run as written.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { nativeBuildHint } from "../../src/tensor/backends/native.js";
import { packedFiles, ROOT } from "./fixture.js";

test("LICENSE is MIT with the project's copyright line", () => {
  const text = readFileSync(join(ROOT, "LICENSE"), "utf8");
  assert.match(text, /^MIT License\n\nCopyright \(c\) 2026 the transfusion authors\n/);
  assert.equal(JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).license, "MIT");
});

test("the packed package holds the LICENSE and every image the README shows", () => {
  const packed = packedFiles();
  assert.ok(packed.has("LICENSE"));
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const images = [...readme.matchAll(/!\[[^\]]*\]\(([^)]+)\)/g)].map((m) => m[1]!);
  assert.ok(images.length >= 4);
  for (const img of images)
    assert.ok(packed.has(img), `${img} is shown by the README but not packed`);
});

test("the native-build hint fits where the package is installed", (t) => {
  assert.match(
    nativeBuildHint("/home/me/app/node_modules/transfusion"),
    /`npm rebuild transfusion`/,
  );
  assert.match(nativeBuildHint("/home/me/src/transfusion"), /`npm run build:native`/);

  // The install script, with a node-gyp that fails, in both places.
  const tmp = mkdtempSync(join(tmpdir(), "tf-hint-"));
  t.after(() => rmSync(tmp, { recursive: true, force: true }));
  const failing = join(tmp, "node-gyp.js");
  writeFileSync(failing, "process.exit(1);\n");
  const installed = join(tmp, "app", "node_modules", "transfusion", "scripts");
  mkdirSync(installed, { recursive: true });
  cpSync(join(ROOT, "scripts", "build-native.mjs"), join(installed, "build-native.mjs"));
  const clone = join(tmp, "clone", "scripts");
  mkdirSync(clone, { recursive: true });
  cpSync(join(ROOT, "scripts", "build-native.mjs"), join(clone, "build-native.mjs"));
  const env = { ...process.env, npm_config_node_gyp: failing, TRANSFUSION_SKIP_NATIVE: "" };
  const inApp = spawnSync(process.execPath, [join(installed, "build-native.mjs")], {
    encoding: "utf8",
    env,
  });
  assert.equal(inApp.status, 0, "a failed build must not fail the install");
  assert.match(inApp.stderr, /then run `npm rebuild transfusion` in your project/);
  const inClone = spawnSync(process.execPath, [join(clone, "build-native.mjs"), "--strict"], {
    encoding: "utf8",
    env,
  });
  assert.equal(inClone.status, 1);
  assert.match(inClone.stderr, /then run `npm run build:native`/);
});

test("the README's Library section says how to run its snippet", () => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const library = readme.slice(readme.indexOf("## Library"), readme.indexOf("## Data format"));
  assert.match(library, /```js\n/);
  assert.match(library, /`example\.mjs`/);
  assert.match(library, /`node example\.mjs`/);
});
