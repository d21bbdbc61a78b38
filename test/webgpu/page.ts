/**
 * The WebGPU test page's script (bundled by kernels.test.ts with esbuild): it creates the
 * runtime and exposes `globalThis.webgpuTest` for playwright to drive case by case: the
 * kernel cases (cases.ts) on the runtime directly, and the model cases (model-cases.ts) through
 * the tensor core, once with the js backend and once with the webgpu backend.
 */

import type { ActiveBackend } from "../../src/tensor/backends/current.js";
import { jsBackend } from "../../src/tensor/backends/js.js";
import { WebGpuRuntime, webGpuBackend } from "../../src/tensor/backends/webgpu/index.js";
import { CASES, runCase } from "./cases.js";
import { compareModelCase, MODEL_CASES } from "./model-cases.js";

let rt: WebGpuRuntime | null = null;
let gpu: ActiveBackend | null = null;
const errors: string[] = [];

/** Runs `fn` with WebGPU validation errors raised meanwhile collected into `errors`. */
async function scoped<T>(fn: () => Promise<T>): Promise<{ result: T; errors: string[] }> {
  if (!rt) throw new Error("init() first");
  errors.length = 0;
  rt.device.pushErrorScope("validation");
  const result = await fn();
  const scopeError = await rt.device.popErrorScope();
  if (scopeError) errors.push(scopeError.message);
  return { result, errors: [...errors] };
}

(globalThis as Record<string, unknown>).webgpuTest = {
  /** Returns the adapter's description, or throws the runtime's error (no WebGPU/adapter). */
  async init() {
    rt = await WebGpuRuntime.create();
    gpu = webGpuBackend(rt);
    rt.device.addEventListener("uncapturederror", (e) => {
      errors.push((e as GPUUncapturedErrorEvent).error.message);
    });
    rt.device.lost.then((info) => errors.push(`device lost: ${info.message}`));
    return rt.info;
  },
  cases: CASES,
  modelCases: MODEL_CASES.map((c) => c.name),
  /** Runs one kernel case; WebGPU validation errors raised meanwhile fail it. */
  async run(name: string) {
    const { result, errors } = await scoped(() => runCase(rt!, name));
    return { summaries: result, errors };
  },
  /**
   * Runs one model case under js and under webgpu and returns the comparison of every
   * observed array (webgpu against js), then of each `same` pair on webgpu.
   */
  async runModel(name: string) {
    const { result, errors } = await scoped(() => compareModelCase(name, jsBackend, gpu!));
    return { summaries: result, errors };
  },
};
