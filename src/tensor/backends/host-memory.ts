/**
 * The memory operations of the host backends (js, native), whose arrays are Float32Arrays in
 * JavaScript memory: allocation is `new Float32Array`, an upload is the array itself, and a
 * read is a copy that is ready at once.
 */
import type { Backend } from "./backend.js";

export const hostMemory: Pick<Backend, "device" | "alloc" | "upload" | "read"> = {
  device: false,
  alloc: (n) => new Float32Array(n),
  upload: (x) => x,
  read: async (x, n) => x.slice(0, n),
};
