// `eval` and the caches: classifiers kept in the user's cache folder (not the working
// directory), a bad checkpoint refused before minutes of classifier training, and a warning
// when the sample is too small for FID to mean much.
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { cacheRoot } from "../../src/data/cache.js";
import { cli, lastJson, skip, trainTinyRun } from "./fixture.js";

const tmp = mkdtempSync(join(tmpdir(), "tf-eval-cache-"));
let run = "";

after(() => rmSync(tmp, { recursive: true, force: true }));

before(() => {
  if (!skip) run = trainTinyRun(join(tmp, "run"));
});

test("the cache folder: $TRANSFUSION_CACHE, else $XDG_CACHE_HOME/transfusion, else ~/.cache", () => {
  assert.equal(cacheRoot({ TRANSFUSION_CACHE: "/a", XDG_CACHE_HOME: "/b" }), "/a");
  assert.equal(cacheRoot({ XDG_CACHE_HOME: "/b" }), "/b/transfusion");
  assert.equal(cacheRoot({ TRANSFUSION_CACHE: "", XDG_CACHE_HOME: "/b" }), "/b/transfusion");
  // A relative XDG_CACHE_HOME is invalid by the spec and ignored.
  assert.equal(cacheRoot({ XDG_CACHE_HOME: "rel" }), join(homedir(), ".cache", "transfusion"));
  assert.equal(cacheRoot({}), join(homedir(), ".cache", "transfusion"));
});

/** Returns the classifier folder `classifier train` (one step) chose under `env`. */
function trainedInto(env: Record<string, string>): string {
  const r = cli(
    [
      "classifier",
      "train",
      "--data",
      "shapes",
      "--steps",
      "1",
      "--batch",
      "4",
      "--eval-count",
      "8",
      "--json",
    ],
    env,
  );
  assert.equal(r.status, 0, r.stderr);
  return lastJson(r.stdout).dir as string;
}

test("classifiers go to the cache folder unless a flag names one", { skip }, () => {
  const a = join(tmp, "cache-a");
  assert.equal(trainedInto({ TRANSFUSION_CACHE: a }), join(a, "classifiers", "shapes-medium"));
  const b = join(tmp, "xdg");
  assert.equal(
    trainedInto({ TRANSFUSION_CACHE: "", XDG_CACHE_HOME: b }),
    join(b, "transfusion", "classifiers", "shapes-medium"),
  );
  const home = join(tmp, "home");
  assert.equal(
    trainedInto({ TRANSFUSION_CACHE: "", XDG_CACHE_HOME: "", HOME: home }),
    join(home, ".cache", "transfusion", "classifiers", "shapes-medium"),
  );

  // eval finds the cached classifier (no training), and warns that 4 samples are too few.
  const common = [
    "eval",
    "--checkpoint",
    run,
    "--count",
    "4",
    "--sample-steps",
    "1",
    "--text-bytes",
    "300",
    "--json",
  ];
  const r = cli(common, { TRANSFUSION_CACHE: a });
  assert.equal(r.status, 0, r.stderr);
  const settings = lastJson(r.stdout).settings as { classifierDir: string };
  assert.equal(settings.classifierDir, join(a, "classifiers", "shapes-medium"));
  assert.doesNotMatch(r.stderr, /trained the shapes evaluation classifier/);
  assert.match(
    r.stderr,
    /warning: --count 4 is small for FID: at small n FID is biased upward, so compare it only with the real-vs-real floor/,
  );
  // --classifier-root still overrides the cache.
  const o = cli([...common, "--classifier-root", join(b, "transfusion", "classifiers")], {
    TRANSFUSION_CACHE: join(tmp, "unused"),
  });
  assert.equal(o.status, 0, o.stderr);
  const s2 = lastJson(o.stdout).settings as { classifierDir: string };
  assert.equal(s2.classifierDir, join(b, "transfusion", "classifiers", "shapes-medium"));
  assert.ok(!existsSync(join(tmp, "unused")));
});

test("eval refuses a broken checkpoint before training a missing classifier", { skip }, () => {
  const bad = join(tmp, "bad");
  cpSync(join(run, "checkpoint"), join(bad, "checkpoint"), { recursive: true });
  writeFileSync(join(bad, "checkpoint", "model.safetensors"), "not safetensors");
  const cache = join(tmp, "fresh-cache");
  const started = Date.now();
  const r = cli(
    ["eval", "--checkpoint", bad, "--count", "4"],
    { TRANSFUSION_CACHE: cache },
    60_000,
  );
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /model\.safetensors/);
  assert.ok(Date.now() - started < 20_000, `took ${Date.now() - started} ms`);
  assert.ok(
    !existsSync(join(cache, "classifiers")),
    "no classifier may be trained for a bad checkpoint",
  );
});
