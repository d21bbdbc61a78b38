/**
 * The webgpu backend in Node, which has no WebGPU of its own: `navigator.gpu` when the runtime
 * provides one, else Dawn through the npm `webgpu` package (not a dependency of this package:
 * `npm install webgpu` where it is wanted).
 *
 * Dawn is asked for an adapter in two ways, in order, and the first that answers is used:
 * 1. its default backends (Vulkan, Metal or D3D12: a real GPU);
 * 2. OpenGL in WebGPU's compatibility mode, the way a Linux machine without a GPU driver
 *    reaches Mesa's software rasteriser (llvmpipe) through a surfaceless EGL display
 *    (EGL_PLATFORM=surfaceless is set when unset). Correct, and slow: for tests and benches.
 * `TRANSFUSION_WEBGPU_FLAGS` (comma-separated Dawn flags, e.g. "backend=opengl") replaces
 * both with one attempt of its own.
 */
import type { WebGpuBackend } from "./webgpu/backend.js";
import { createWebGpuBackend } from "./webgpu/backend.js";

/** What the `webgpu` package exports (its types.d.ts). */
interface DawnModule {
  create(flags: string[]): GPU;
  globals: object;
}

interface Attempt {
  flags: string[];
  options: GPURequestAdapterOptions;
  what: string;
}

/** Returns the ways to ask Dawn for an adapter, in order. */
function attempts(): Attempt[] {
  const forced = process.env.TRANSFUSION_WEBGPU_FLAGS;
  if (forced) {
    const flags = forced.split(",").map((f) => f.trim());
    const compat = flags.some((f) => /^backend=opengl/.test(f));
    return [
      {
        flags,
        options: compat ? { featureLevel: "compatibility" } : {},
        what: `Dawn with TRANSFUSION_WEBGPU_FLAGS=${forced}`,
      },
    ];
  }
  return [
    { flags: [], options: {}, what: "Dawn's default backends (Vulkan, Metal, D3D12)" },
    {
      flags: ["backend=opengl"],
      options: { featureLevel: "compatibility" },
      what: "Dawn on OpenGL, compatibility mode (e.g. Mesa's llvmpipe through surfaceless EGL)",
    },
  ];
}

/**
 * Returns the webgpu backend for Node: navigator.gpu when present, else the `webgpu` package;
 * throws saying what was tried and how to get an adapter when nothing answers.
 */
export async function createNodeWebGpuBackend(): Promise<WebGpuBackend> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return createWebGpuBackend();
  let dawn: DawnModule;
  try {
    // A variable specifier: the package is optional, and bundlers must not require it.
    const name = "webgpu";
    dawn = (await import(name)) as DawnModule;
  } catch (err) {
    throw new Error(
      `the webgpu backend needs WebGPU, which Node does not have: install the \`webgpu\` package (Dawn) with \`npm install webgpu\` (${(err as Error).message.split("\n")[0]})`,
    );
  }
  // GPUBufferUsage, GPUMapMode and the other constants the runtime reads as globals.
  Object.assign(globalThis, dawn.globals);
  if (!process.env.EGL_PLATFORM) process.env.EGL_PLATFORM = "surfaceless";
  const tried: string[] = [];
  for (const a of attempts()) {
    const gpu = dawn.create(a.flags);
    try {
      return await createWebGpuBackend(a.options, gpu);
    } catch (err) {
      tried.push(`${a.what}: ${(err as Error).message.split("\n")[0]}`);
    }
  }
  throw new Error(
    `no WebGPU adapter found in Node. Tried ${tried.join("; ")}. Without a GPU driver on Linux, Mesa's OpenGL drivers give one (Debian: \`apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri\`)`,
  );
}
