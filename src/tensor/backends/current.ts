/**
 * The active backend, as the tensor core reads it. This module runs anywhere (Node, a browser,
 * a Web Worker): it knows only the js backend and imports nothing from Node. What to pick when
 * nobody chose is decided by a chooser; until one is installed that is `js`. In Node,
 * `./index.ts` installs the chooser that prefers the native addon (and reads
 * TRANSFUSION_BACKEND), so every Node program that uses the package gets native when it loads.
 */
import type { FloatStore } from "../storage.js";
import type { Backend } from "./backend.js";
import { jsBackend } from "./js.js";

/**
 * A backend as the tensor core holds it: its arrays are host Float32Arrays or device arrays,
 * which the core passes between kernels without looking inside.
 */
export type ActiveBackend = Backend<FloatStore>;

let current: ActiveBackend | null = null;
/** Whether `current` was set on purpose (setActiveBackend) rather than by the chooser. */
let chosenExplicitly = false;
let chooser: () => ActiveBackend = () => jsBackend;

/** Returns the active backend, asking the chooser on first use. */
export function backend(): ActiveBackend {
  if (current) return current;
  current = chooser();
  return current;
}

/** Makes `b` the active backend. */
export function setActiveBackend<B extends ActiveBackend>(b: B): B {
  current = b;
  chosenExplicitly = true;
  return b;
}

/**
 * Installs what picks the backend when none was set. A backend the previous chooser already
 * picked is dropped so the new one decides; one set with setActiveBackend is kept.
 */
export function setBackendChooser(choose: () => ActiveBackend): void {
  chooser = choose;
  if (!chosenExplicitly) current = null;
}

/** Forgets the active backend, so the chooser picks again at the next use. */
export function resetActiveBackend(): void {
  current = null;
  chosenExplicitly = false;
}
