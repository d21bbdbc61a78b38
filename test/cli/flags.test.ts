// Flags that mean what they say: every number checked against its real range with the flag
// named, 0 kept where it means "off" or "only at the end", one name per idea across commands
// (older spellings as hidden aliases), required options marked, help and README in agreement,
// and unknown names refused before any work starts.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import type { Command } from "commander";
import { DEMO_RUN } from "../../src/cli/demo.js";
import { imageOptions } from "../../src/cli/flags.js";
import { buildProgram } from "../../src/cli/main.js";
import { applyRunFlags } from "../../src/cli/train.js";
import { cli, ROOT, skip } from "./fixture.js";

const tmp = mkdtempSync(join(tmpdir(), "tf-flags-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Returns every command of the tree with its full name ("vae train"). */
function commands(cmd: Command, prefix = ""): Array<{ name: string; cmd: Command }> {
  return cmd.commands.flatMap((c) => {
    const name = `${prefix}${c.name()}`;
    return [{ name, cmd: c }, ...commands(c, `${name} `)];
  });
}

/** Returns the options the command's action receives for `argv`, without running it. */
async function parsedOptions(argv: string[]): Promise<Record<string, unknown>> {
  const program = buildProgram();
  let seen: Record<string, unknown> | null = null;
  const names = argv.slice(
    0,
    argv.findIndex((a) => a.startsWith("--")),
  );
  let cmd: Command = program;
  for (const n of names) cmd = cmd.commands.find((c) => c.name() === n)!;
  cmd.action((...args: unknown[]) => {
    seen = (args[args.length - 1] as Command).opts();
  });
  await program.parseAsync(argv, { from: "user" });
  assert.ok(seen, `no action ran for ${argv.join(" ")}`);
  return seen;
}

test("numbers out of range are refused naming the flag and the range", { skip }, () => {
  const out = join(tmp, "numbers");
  const cases: Array<[string[], RegExp]> = [
    [["train", "--lr", "0", "--out", out], /--lr must be a number > 0, got "0"/],
    [["train", "--lr", "-1", "--out", out], /--lr must be a number > 0, got "-1"/],
    [["train", "--steps", "0", "--out", out], /--steps must be an integer ≥ 1, got "0"/],
    [["train", "--batch", "0", "--out", out], /--batch must be an integer ≥ 1, got "0"/],
    [["train", "--seed", "1.5", "--out", out], /--seed must be an integer ≥ 0, got "1.5"/],
    [["demo", "--lr", "0", "--out", out], /--lr must be a number > 0/],
    [["generate", "--checkpoint", out, "--guidance", "-1", "x"], /--guidance must be a number ≥ 0/],
    [["generate", "--checkpoint", out, "--x0-clip", "-3", "x"], /--x0-clip must be a number ≥ 0/],
    [["generate", "--checkpoint", out, "--count", "0", "x"], /--count must be an integer ≥ 1/],
    [
      ["complete", "--checkpoint", out, "--top-p", "1.5", "x"],
      /--top-p must be a number > 0 and ≤ 1/,
    ],
    [
      ["complete", "--checkpoint", out, "--temperature", "-1", "x"],
      /--temperature must be a number ≥ 0/,
    ],
    [["eval", "--checkpoint", out, "--count", "0"], /--count must be an integer ≥ 1/],
    [
      ["vae", "train", "--data", "shapes", "--out", out, "--kl-weight", "-1"],
      /--kl-weight must be a number ≥ 0/,
    ],
    [
      ["vae", "train", "--data", "shapes", "--out", out, "--seed", "0.5"],
      /--seed must be an integer ≥ 0/,
    ],
    [["classifier", "train", "--data", "mnist", "--lr", "0"], /--lr must be a number > 0/],
    [["bench", "core", "--steps", "0"], /--steps must be an integer ≥ 1/],
  ];
  for (const [args, message] of cases) {
    const r = cli(args, {}, 20_000);
    assert.equal(r.status, 1, `${args.join(" ")}: exit ${r.status}\n${r.stderr}`);
    assert.match(r.stderr, message, args.join(" "));
  }
  assert.ok(!existsSync(out), "nothing may be written before the flags are checked");
});

test("0 means 0 where it means off or only-at-the-end", async () => {
  const o = await parsedOptions([
    "train",
    "--sample-every",
    "0",
    "--checkpoint-every",
    "0",
    "--seed",
    "0",
    "--lr",
    "0.5",
  ]);
  // The demo's defaults set non-zero intervals: the flags must win over them.
  const c = applyRunFlags(DEMO_RUN, o);
  assert.equal(c.sampleEvery, 0);
  assert.equal(c.train?.checkpointEvery, 0);
  assert.equal(c.train?.seed, 0);
  assert.equal(c.train?.maxLr, 0.5);
  const g = await parsedOptions([
    "generate",
    "--checkpoint",
    "x",
    "--guidance",
    "0",
    "--x0-clip",
    "0",
  ]);
  assert.deepEqual(
    { ...imageOptions(g), seed: 0 },
    { sampler: "ddpm", steps: 100, guidanceScale: null, x0Clip: null, seed: 0 },
  );
  const v = await parsedOptions([
    "vae",
    "train",
    "--data",
    "shapes",
    "--out",
    "x",
    "--grid-every",
    "0",
  ]);
  assert.equal(v.gridEvery, 0);
});

test("older spellings still work as hidden aliases", async () => {
  assert.equal(
    (await parsedOptions(["generate", "--checkpoint", "x", "--steps", "7"])).sampleSteps,
    7,
  );
  const c = await parsedOptions([
    "classifier",
    "train",
    "--data",
    "mnist",
    "--batch-size",
    "9",
    "--test-images",
    "11",
  ]);
  assert.equal(c.batch, 9);
  assert.equal(c.evalCount, 11);
  const e = await parsedOptions(["classifier", "eval", "--dir", "somewhere", "--test-images", "5"]);
  assert.equal(e.classifier, "somewhere");
  assert.equal(e.count, 5);
  assert.equal(
    (await parsedOptions(["vae", "eval", "--vae", "v", "--data", "mnist", "--images", "3"])).count,
    3,
  );
  await assert.rejects(
    parsedOptions(["generate", "--checkpoint", "x", "--steps", "0"]),
    /^Error: --steps must be an integer ≥ 1, got "0"$/,
  );
  // Hidden: help shows one name per idea.
  for (const { name, cmd } of commands(buildProgram())) {
    const help = cmd.helpInformation();
    for (const old of ["--batch-size", "--test-images", "--images", "--dir "])
      assert.ok(!help.includes(old), `${name} --help still shows ${old}`);
    if (help.includes("--sample-steps") && name !== "experiment")
      assert.ok(!/--steps\b/.test(help), `${name} shows both --steps and --sample-steps`);
  }
});

test("shared flags are declared once: the same help text on every command", () => {
  const texts = new Map<string, Set<string>>();
  for (const { cmd } of commands(buildProgram())) {
    for (const o of cmd.options) {
      if (!o.long || o.hidden) continue;
      if (!texts.has(o.long)) texts.set(o.long, new Set());
      texts.get(o.long)!.add(o.description);
    }
  }
  for (const flag of [
    "--backend",
    "--json",
    "--quiet",
    "--sampler",
    "--sample-steps",
    "--guidance",
    "--x0-clip",
    "--checkpoint",
  ]) {
    assert.equal(texts.get(flag)?.size, 1, `${flag}: ${[...(texts.get(flag) ?? [])].join(" | ")}`);
  }
  for (const { name, cmd } of commands(buildProgram())) {
    if (cmd.commands.length > 0) continue;
    assert.ok(
      texts.get("--backend") && cmd.options.some((o) => o.long === "--backend"),
      `${name}: no --backend`,
    );
    assert.ok(
      cmd.options.some((o) => o.long === "--json"),
      `${name}: no --json`,
    );
  }
});

test("required options are marked in help", () => {
  let marked = 0;
  for (const { name, cmd } of commands(buildProgram())) {
    const help = cmd.helpInformation().replace(/\s+/g, " ");
    for (const o of cmd.options.filter((x) => x.mandatory)) {
      const at = help.indexOf(o.flags);
      const next = help.indexOf(" --", at + o.flags.length);
      assert.ok(at >= 0, `${name}: ${o.flags} missing from help`);
      assert.match(
        help.slice(at, next < 0 ? undefined : next),
        /\(required\)/,
        `${name} ${o.flags}`,
      );
      marked++;
    }
  }
  assert.ok(marked >= 8, `only ${marked} required options`);
});

test("help and README agree on flag names and section names", () => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const visible = new Set<string>();
  const all = new Set<string>(["--help", "--version"]);
  const help: string[] = [];
  for (const { cmd } of commands(buildProgram())) {
    help.push(cmd.helpInformation());
    for (const o of cmd.options) {
      if (!o.long) continue;
      all.add(o.long);
      if (!o.hidden) visible.add(o.long);
    }
  }
  // The README also documents python/train.py (argparse flags, read from its source) and the
  // torchrun flags that launch it (--nproc_per_node reads as --nproc here).
  const trainPy = readFileSync(join(ROOT, "python", "train.py"), "utf8");
  for (const m of trainPy.matchAll(/add_argument\("(--[a-z][a-z0-9-]*)"/g)) all.add(m[1]!);
  for (const flag of ["--nproc", "--redirects", "--tee"]) all.add(flag);
  const mentioned = new Set(readme.match(/(?<![\w-])--[a-z][a-z0-9-]*(?![A-Za-z])/g) ?? []);
  for (const flag of visible) assert.ok(mentioned.has(flag), `${flag} is not in the README`);
  for (const flag of mentioned)
    assert.ok(all.has(flag), `the README names ${flag}, which no command has`);
  const headings = new Set([...readme.matchAll(/^#+ (.+)$/gm)].map((m) => m[1]!.trim()));
  for (const m of help
    .join("\n")
    .replace(/\s+/g, " ")
    .matchAll(/README,? '([^']+)'/g)) {
    assert.ok(headings.has(m[1]!), `help points to README section '${m[1]}', which does not exist`);
  }
  for (const { name } of commands(buildProgram())) {
    if (name.includes(" ")) continue;
    assert.ok(
      readme.includes(`transfusion ${name}`),
      `README does not show \`transfusion ${name}\``,
    );
  }
});

test("unknown preset or data names fail at once, naming the choices", { skip }, () => {
  const out = join(tmp, "names");
  const cases: Array<[string[], RegExp]> = [
    [
      ["train", "--preset", "nope", "--out", out],
      /--preset must be one of tiny, demo, small, base, paper-0\.16B, got "nope"/,
    ],
    [["demo", "--preset", "nope", "--out", out], /--preset must be one of tiny, demo/],
    [
      ["demo", "--data", "mnist", "--out", out],
      /--data mnist: the demo scores with the shapes checker/,
    ],
    [
      ["train", "--data", "nope", "--out", out],
      /--data must be one of shapes, mnist, fashion-mnist, emoji or a \.jsonl document file, got "nope"/,
    ],
    [
      ["train", "--text-corpus", "nope", "--out", out],
      /--text-corpus must be one of moby-dick, sotu, none/,
    ],
    [
      ["eval", "--checkpoint", out, "--data", "nope"],
      /--data must be one of shapes, mnist, fashion-mnist, emoji, got "nope"/,
    ],
    [
      ["generate", "--checkpoint", out, "--sampler", "nope", "x"],
      /--sampler must be one of ddpm, ddim, flow-euler/,
    ],
    [["train", "--backend", "gpu", "--out", out], /--backend must be one of js, native/],
  ];
  for (const [args, message] of cases) {
    const started = Date.now();
    const r = cli(args, {}, 10_000);
    assert.equal(r.status, 1, `${args.join(" ")}: exit ${r.status}\n${r.stderr}`);
    assert.match(r.stderr, message);
    assert.ok(Date.now() - started < 5_000, `${args.join(" ")} took ${Date.now() - started} ms`);
  }
  assert.ok(!existsSync(out), "a refused run must not create its folder");
});
