/**
 * Buffer reuse for training and sampling steps. Inside `withArena`, float buffers come from a
 * pool keyed by length, and every buffer handed out is returned to the pool when the arena
 * closes. A step allocates the same few sizes every time, so after the first step nothing is
 * allocated, zero-filled by the OS or collected by the GC.
 *
 * Buffers come from the active backend: Float32Arrays for the host backends, device arrays for
 * `webgpu` (reusing a device buffer is safe because a device runs kernels in the order they
 * were enqueued). `allocHost` always hands out a Float32Array, for values the host computes.
 *
 * The contract: nothing allocated inside an arena may be used after it closes (copy results
 * out first). `TRANSFUSION_POOL_DEBUG=1` fills returned buffers with NaN so a violation
 * shows up as NaN instead of silently wrong numbers.
 */

import { type ActiveBackend, backend } from "./backends/current.js";
import type { FloatStore } from "./storage.js";

/** A pooled buffer and the backend that made it (null: a host Float32Array). */
interface Pooled {
  buf: FloatStore;
  owner: ActiveBackend | null;
}

/** Free buffers by owner (null = host) and length. */
const free = new Map<ActiveBackend | null, Map<number, FloatStore[]>>();
let live: Pooled[] | null = null;
// `process` is missing in a browser, where the pool runs too.
const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
let debug = env?.TRANSFUSION_POOL_DEBUG === "1";

/** Turns NaN-filling of returned buffers on or off (tests). */
export function setPoolDebug(on: boolean): void {
  debug = on;
}

function take(owner: ActiveBackend | null, n: number): FloatStore | undefined {
  const stack = free.get(owner)?.get(n);
  return stack && stack.length > 0 ? stack.pop() : undefined;
}

/** Returns a zero-filled host buffer of length n (pooled inside an arena). */
export function allocHost(n: number): Float32Array {
  if (live === null) return new Float32Array(n);
  const b = take(null, n) as Float32Array | undefined;
  live.push({ buf: b ?? new Float32Array(n), owner: null });
  if (b) b.fill(0);
  return live[live.length - 1]!.buf as Float32Array;
}

/**
 * Returns a buffer of length n of the active backend (pooled inside an arena), zero-filled
 * unless `raw` (the caller then overwrites every element).
 */
export function alloc(n: number, raw = false): FloatStore {
  const be = backend();
  if (!be.device) return raw ? allocRawHost(n) : allocHost(n);
  if (live === null) return be.alloc(n);
  let b = take(be, n);
  if (b && !raw) be.fill(b, n, 0);
  b ??= be.alloc(n);
  live.push({ buf: b, owner: be });
  return b;
}

function allocRawHost(n: number): Float32Array {
  if (live === null) return new Float32Array(n);
  const b = (take(null, n) as Float32Array | undefined) ?? new Float32Array(n);
  live.push({ buf: b, owner: null });
  return b;
}

/**
 * Returns fn's result, with every buffer allocated by alloc/allocRaw during fn returned to the
 * pool afterwards. Arenas nest: an inner arena's buffers stay live until the outermost closes.
 */
export function withArena<T>(fn: () => T): T {
  if (live !== null) return fn();
  live = [];
  try {
    return fn();
  } finally {
    closeArena();
  }
}

/** Returns every buffer of the open arena to the pool and closes it. */
function closeArena(): void {
  const done = live ?? [];
  live = null;
  for (const { buf, owner } of done) {
    if (debug) {
      if (owner) owner.fill(buf, buf.length, Number.NaN);
      else (buf as Float32Array).fill(Number.NaN);
    }
    let byLength = free.get(owner);
    if (!byLength) {
      byLength = new Map();
      free.set(owner, byLength);
    }
    let stack = byLength.get(buf.length);
    if (!stack) {
      stack = [];
      byLength.set(buf.length, stack);
    }
    stack.push(buf);
  }
}

/**
 * The arena of an asynchronous step (one that awaits device reads, see Tensor.read): every
 * buffer allocated until the returned promise settles goes back to the pool then. Only one
 * asynchronous arena may be open at a time, and nothing else may allocate meanwhile, since
 * the pool cannot tell whose allocation an interleaved task made.
 */
export async function withArenaAsync<T>(fn: () => Promise<T>): Promise<T> {
  if (live !== null) throw new Error("withArenaAsync: an arena is already open");
  live = [];
  try {
    return await fn();
  } finally {
    closeArena();
  }
}

/** Returns the bytes held by the pool (for benches and memory tests). */
export function pooledBytes(): number {
  let s = 0;
  for (const byLength of free.values()) {
    for (const stack of byLength.values()) for (const b of stack) s += b.length * 4;
  }
  return s;
}

/** Empties the pool (the buffers become garbage). */
export function clearPool(): void {
  free.clear();
}
