/**
 * The WebGPU test page's script (bundled by kernels.test.ts with esbuild): it creates the
 * runtime and exposes `globalThis.webgpuTest` for playwright to drive case by case.
 */

import { WebGpuRuntime } from "../../src/tensor/backends/webgpu/index.js";
import { CASES, runCase } from "./cases.js";

let rt: WebGpuRuntime | null = null;
const errors: string[] = [];

(globalThis as Record<string, unknown>).webgpuTest = {
  /** Returns the adapter's description, or throws the runtime's error (no WebGPU/adapter). */
  async init() {
    rt = await WebGpuRuntime.create();
    rt.device.addEventListener("uncapturederror", (e) => {
      errors.push((e as GPUUncapturedErrorEvent).error.message);
    });
    rt.device.lost.then((info) => errors.push(`device lost: ${info.message}`));
    return rt.info;
  },
  cases: CASES,
  /** Runs one case; WebGPU validation errors raised meanwhile fail it. */
  async run(name: string) {
    if (!rt) throw new Error("init() first");
    errors.length = 0;
    rt.device.pushErrorScope("validation");
    const summaries = await runCase(rt, name);
    const scoped = await rt.device.popErrorScope();
    if (scoped) errors.push(scoped.message);
    return { summaries, errors: [...errors] };
  },
};
