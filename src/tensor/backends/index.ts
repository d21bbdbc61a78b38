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
import { backend, setActiveBackend, setBackendChooser } from "./current.js";
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

/** Returns the backend to use when none was set: TRANSFUSION_BACKEND, else native, else js. */
function chooseNodeBackend(): Backend {
  const forced = process.env.TRANSFUSION_BACKEND;
  if (forced !== undefined && forced !== "") {
    if (forced !== "js" && forced !== "native") {
      throw new Error(`TRANSFUSION_BACKEND must be "js" or "native", got "${forced}"`);
    }
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
export function setBackend(name: BackendName): Backend {
  return setActiveBackend(getBackend(name));
}
