/**
 * Backend selection: chosen once, at first use. `native` when the addon loads, else `js`
 * with one warning line; `TRANSFUSION_BACKEND=js|native` (or `setBackend`) forces one.
 */
import type { Backend } from "./backend.js";
import { jsBackend } from "./js.js";
import { loadNativeBackend, type NativeBackendLoad, nativeBuildHint } from "./native.js";

export type BackendName = Backend["name"];

let current: Backend | null = null;
let nativeCache: NativeBackendLoad | null = null;

function native(): NativeBackendLoad {
  nativeCache ??= loadNativeBackend();
  return nativeCache;
}

/** Returns the native backend, or null with the reason it could not load. */
export function tryNativeBackend(): NativeBackendLoad {
  return native();
}

/** Returns the backend named `name`; throws if `native` was asked for and cannot load. */
export function getBackend(name: BackendName): Backend {
  if (name === "js") return jsBackend;
  const n = native();
  if (!n.backend) {
    throw new Error(
      `the native backend was requested but cannot load: ${n.error}. ` +
        `To build it, ${nativeBuildHint()}; or use TRANSFUSION_BACKEND=js.`,
    );
  }
  return n.backend;
}

/** Returns the active backend, selecting it on first call. */
export function backend(): Backend {
  if (current) return current;
  const forced = process.env.TRANSFUSION_BACKEND;
  if (forced !== undefined && forced !== "") {
    if (forced !== "js" && forced !== "native") {
      throw new Error(`TRANSFUSION_BACKEND must be "js" or "native", got "${forced}"`);
    }
    current = getBackend(forced);
    return current;
  }
  const n = native();
  if (n.backend) {
    current = n.backend;
  } else {
    process.stderr.write(
      `transfusion: native backend unavailable (${n.error}); using the slower js backend (to build it, ${nativeBuildHint()})\n`,
    );
    current = jsBackend;
  }
  return current;
}

/** Forces the active backend (tests, benches, `--backend`). */
export function setBackend(name: BackendName): Backend {
  current = getBackend(name);
  return current;
}
