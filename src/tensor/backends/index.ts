/**
 * Backend selection in Node: chosen once, at first use. `native` when the addon loads, else
 * `js` with one warning line; `TRANSFUSION_BACKEND=js|native` (or `setBackend`) forces one.
 *
 * The tensor core reads the active backend from `./current.ts`, which runs in a browser too;
 * importing this module (as the package entry, the CLI and the trainer do) installs the
 * native-aware chooser there. The browser entry never imports it, so native.ts and its Node
 * imports stay out of a web page.
 */
import type { Backend } from "./backend.js";
import {
  type ActiveBackend,
  backend,
  resetActiveBackend,
  setActiveBackend,
  setBackendChooser,
} from "./current.js";
import { jsBackend } from "./js.js";
import { loadNativeBackend, type NativeBackendLoad, nativeBuildHint } from "./native.js";
import type { WebGpuBackend } from "./webgpu/backend.js";
import { createNodeWebGpuBackend } from "./webgpu-node.js";

export type BackendName = Backend["name"];
export { backend };

let nativeCache: NativeBackendLoad | null = null;

function native(): NativeBackendLoad {
  nativeCache ??= loadNativeBackend();
  return nativeCache;
}

/** Returns the native backend, or null with the reason it could not load. */
export function tryNativeBackend(): NativeBackendLoad {
  return native();
}

/** Why `webgpu` cannot be had synchronously: a device is acquired asynchronously. */
const WEBGPU_IS_ASYNC =
  'the webgpu backend is created asynchronously: use `await useBackend("webgpu")` ' +
  "(the CLI does this for --backend webgpu and TRANSFUSION_BACKEND=webgpu)";

/**
 * Returns the backend named `name`; throws if `native` was asked for and cannot load, and for
 * `webgpu`, which `useBackend` creates.
 */
export function getBackend(name: BackendName): ActiveBackend {
  if (name === "js") return jsBackend;
  if (name === "webgpu") throw new Error(WEBGPU_IS_ASYNC);
  const n = native();
  if (!n.backend) {
    throw new Error(
      `the native backend was requested but cannot load: ${n.error}. ` +
        `To build it, ${nativeBuildHint()}; or use TRANSFUSION_BACKEND=js.`,
    );
  }
  return n.backend;
}

/** Returns the backend to use when none was set: TRANSFUSION_BACKEND, else native, else js. */
function chooseNodeBackend(): ActiveBackend {
  const forced = process.env.TRANSFUSION_BACKEND;
  if (forced !== undefined && forced !== "") {
    if (forced !== "js" && forced !== "native" && forced !== "webgpu") {
      throw new Error(`TRANSFUSION_BACKEND must be "js" or "native", got "${forced}"`);
    }
    if (forced === "webgpu") throw new Error(`TRANSFUSION_BACKEND=webgpu: ${WEBGPU_IS_ASYNC}`);
    return getBackend(forced);
  }
  const n = native();
  if (n.backend) return n.backend;
  process.stderr.write(
    `transfusion: native backend unavailable (${n.error}); using the slower js backend (to build it, ${nativeBuildHint()})\n`,
  );
  return jsBackend;
}

setBackendChooser(chooseNodeBackend);

/** Forces the active backend (tests, benches, `--backend`). */
export function setBackend(name: BackendName): ActiveBackend {
  return setActiveBackend(getBackend(name));
}

/**
 * Makes the backend named `name` active and returns it: `webgpu` through navigator.gpu or the
 * optional `webgpu` package (see webgpu-node.ts), acquired once per process; the others as
 * `setBackend`.
 */
export async function useBackend(name: BackendName): Promise<ActiveBackend> {
  if (name !== "webgpu") return setBackend(name);
  webgpu ??= createNodeWebGpuBackend();
  try {
    return setActiveBackend(await webgpu);
  } catch (err) {
    webgpu = null;
    throw err;
  }
}

let webgpu: Promise<WebGpuBackend> | null = null;

/**
 * Destroys the webgpu device `useBackend` acquired, if any, and makes the default backend
 * active again; returns whether there was one. Dawn keeps Node's event loop alive while its
 * instance exists, so a program that used it ends with `process.exit` after this.
 */
export async function releaseDevices(): Promise<boolean> {
  if (!webgpu) return false;
  const gpu = await webgpu.catch(() => null);
  webgpu = null;
  if (!gpu) return false;
  if (backend() === gpu) resetActiveBackend();
  gpu.runtime.destroy();
  return true;
}

/** Returns the backend the environment names (TRANSFUSION_BACKEND), or null for the default. */
export function backendFromEnv(): BackendName | null {
  const v = process.env.TRANSFUSION_BACKEND;
  return v === "js" || v === "native" || v === "webgpu" ? v : null;
}

/**
 * Returns fn's result computed on a host backend (native when it loads, else js) when the
 * active backend is a device: the stages that read values synchronously (autoencoder and
 * classifier training, VQ encoding, data preparation) run there while the transformer runs
 * on the device. On a host backend, fn runs as it is.
 */
export function onHost<T>(fn: () => T): T {
  const active = backend();
  if (!active.device) return fn();
  const n = native();
  setActiveBackend(n.backend ?? jsBackend);
  try {
    return fn();
  } finally {
    setActiveBackend(active);
  }
}

/** As `onHost`, for a function that awaits. */
export async function onHostAsync<T>(fn: () => Promise<T>): Promise<T> {
  const active = backend();
  if (!active.device) return fn();
  const n = native();
  setActiveBackend(n.backend ?? jsBackend);
  try {
    return await fn();
  } finally {
    setActiveBackend(active);
  }
}
