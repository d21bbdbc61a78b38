// The webgpu backend in Node, through Dawn (the npm `webgpu` package, a devDependency): the
// kernel and model cases that test/webgpu/kernels.test.ts runs in Chromium run here against
// js too, and the CLI trains and draws with --backend webgpu as it does on js. Without a GPU,
// Dawn reaches Mesa's llvmpipe through OpenGL (scripts/setup.sh installs the EGL and DRI
// packages). Skipped with a message when no adapter answers, unless env CI is set.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { ActiveBackend } from "../../src/tensor/backends/current.js";
import { releaseDevices, useBackend } from "../../src/tensor/backends/index.js";
import { jsBackend } from "../../src/tensor/backends/js.js";
import type { WebGpuBackend } from "../../src/tensor/backends/webgpu/index.js";
import { CASES, runCase } from "./cases.js";
import { compareModelCase, MODEL_CASES } from "./model-cases.js";

const ROOT = join(import.meta.dirname, "..", "..");
const tmp = mkdtempSync(join(tmpdir(), "tf-webgpu-node-"));
let gpu: WebGpuBackend | null = null;
let unavailable: string | null = null;
const gpuErrors: string[] = [];

/** Runs the CLI from source; returns its status and output. */
function cli(args: string[], env: Record<string, string> = {}) {
  const main = JSON.stringify(join(ROOT, "src", "cli", "main.ts"));
  const code = `import(${main}).then(async (m) => { process.exitCode = await m.main(process.argv.slice(1)); await m.releaseDevices(); })`;
  return spawnSync(process.execPath, ["--import", "tsx", "-e", code, ...args], {
    encoding: "utf8",
    timeout: 300_000,
    env: { ...process.env, ...env },
  });
}

describe("webgpu in Node (Dawn)", () => {
  before(async () => {
    try {
      gpu = (await useBackend("webgpu")) as WebGpuBackend;
      gpu.runtime.device.addEventListener("uncapturederror", (e) => {
        gpuErrors.push((e as GPUUncapturedErrorEvent).error.message);
      });
      console.log(`webgpu adapter in Node: ${JSON.stringify(gpu.runtime.info)}`);
    } catch (err) {
      const message = (err as Error).message;
      if (process.env.CI)
        throw new Error(`CI is set but webgpu is unavailable in Node: ${message}`);
      unavailable = `no webgpu adapter in Node: ${message}`;
    }
  });

  after(async () => {
    await releaseDevices();
    rmSync(tmp, { recursive: true, force: true });
  });

  /** Skips the test when no adapter answered; returns the backend otherwise. */
  function device(t: { skip: (why: string) => void }): ActiveBackend | null {
    if (unavailable) t.skip(unavailable);
    return gpu;
  }

  test("every kernel case agrees with js", { timeout: 600_000 }, async (t) => {
    if (!device(t)) return;
    const failed: string[] = [];
    for (const name of CASES) {
      for (const s of await runCase(gpu!.runtime, name)) {
        if (s.failure) failed.push(`${name}: ${s.what}${s.failure}`);
      }
    }
    assert.deepEqual(failed, []);
    assert.deepEqual(gpuErrors, [], "WebGPU errors");
  });

  test("every model case (op gradients, training, cached decoding) agrees with js", {
    timeout: 600_000,
  }, async (t) => {
    if (!device(t)) return;
    const failed: string[] = [];
    for (const { name } of MODEL_CASES) {
      for (const s of await compareModelCase(name, jsBackend, gpu!)) {
        if (s.failure) failed.push(`${name}: ${s.what}${s.failure}`);
      }
    }
    assert.deepEqual(failed, []);
    assert.deepEqual(gpuErrors, [], "WebGPU errors");
  });

  test("transfusion train and generate --backend webgpu match the js backend", {
    timeout: 600_000,
  }, (t) => {
    if (!device(t)) return;
    const runs: Record<string, string> = {};
    for (const backend of ["js", "webgpu"]) {
      const out = join(tmp, `run-${backend}`);
      // A tiny run: 64 images, a 5-step VAE (trained on the host either way), 6 steps.
      const train = cli([
        "train",
        ...["--data", "shapes", "--preset", "tiny", "--steps", "6", "--batch", "2"],
        ...["--seq-len", "96", "--max-images", "64", "--vae-steps", "5"],
        ...["--text-corpus", "none", "--sample-every", "0", "--out", out],
        ...["--backend", backend],
      ]);
      assert.equal(train.status, 0, train.stderr);
      runs[backend] = out;
    }
    const losses = (run: string) =>
      readFileSync(join(run, "metrics.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { total: number });
    const [js, gpuRun] = [losses(runs.js!), losses(runs.webgpu!)];
    assert.equal(gpuRun.length, js.length);
    js.forEach((m, i) => {
      const d = Math.abs(m.total - gpuRun[i]!.total);
      assert.ok(d <= 1e-4 * Math.abs(m.total), `step ${i + 1}: ${gpuRun[i]!.total} vs ${m.total}`);
    });
    // The webgpu run's checkpoint draws on both backends the same pixels.
    const pngs: Buffer[] = [];
    for (const backend of ["js", "webgpu"]) {
      const out = join(tmp, `draw-${backend}`);
      const g = cli([
        "generate",
        "a large red circle",
        ...["--checkpoint", join(runs.webgpu!, "checkpoint"), "--sample-steps", "8"],
        ...["--out", out, "--backend", backend],
      ]);
      assert.equal(g.status, 0, g.stderr);
      pngs.push(readFileSync(join(out, "000-s0.png")));
    }
    assert.deepEqual(pngs[1], pngs[0]);
  });
});

test("--backend webgpu fails with what was tried when no adapter answers", () => {
  // D3D12 exists only on Windows: Dawn offers no adapter for it here.
  const r = cli(["generate", "a red circle", "--backend", "webgpu", "--out", join(tmp, "none")], {
    TRANSFUSION_WEBGPU_FLAGS: "backend=d3d12",
  });
  assert.equal(r.status, 1);
  assert.match(
    r.stderr,
    /transfusion: no WebGPU adapter found in Node\. Tried Dawn with TRANSFUSION_WEBGPU_FLAGS=backend=d3d12/,
  );
});
