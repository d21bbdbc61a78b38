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
import { type ActiveBackend, backend, setActiveBackend, setBackendChooser } from "./current.js";
import { jsBackend } from "./js.js";
import { loadNativeBackend, type NativeBackendLoad, nativeBuildHint } from "./native.js";

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

/**
 * Why `webgpu` cannot be chosen by name in Node: it is created asynchronously on a platform
 * with an adapter, and the CLI's loops read values synchronously.
 */
const WEBGPU_BY_NAME =
  "the webgpu backend cannot be selected by name in Node: it is created asynchronously where " +
  "WebGPU exists (`setActiveBackend(await createWebGpuBackend())`, in a browser through " +
  "transfusion/browser), Node has no built-in WebGPU (the optional `webgpu` package brings " +
  "Dawn, which finds no adapter without a GPU driver), and the CLI's training and sampling " +
  "loops still read values synchronously, which a device backend cannot serve. Use js or native";

/** Returns the backend named `name`; throws if `native` was asked for and cannot load. */
export function getBackend(name: BackendName): ActiveBackend {
  if (name === "js") return jsBackend;
  if (name === "webgpu") throw new Error(WEBGPU_BY_NAME);
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
    if (forced === "webgpu") throw new Error(`TRANSFUSION_BACKEND=webgpu: ${WEBGPU_BY_NAME}`);
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
