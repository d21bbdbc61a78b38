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
import type { DeviceArray, FloatStore } from "./storage.js";

// Host buffers (the hot path: every op's output on js and native) and device buffers are
// pooled apart, the latter per backend that made them.
const freeHost = new Map<number, Float32Array[]>();
const freeDevice = new Map<ActiveBackend, Map<number, DeviceArray[]>>();
/** Buffers handed out in the open arena (null: no arena). */
let liveHost: Float32Array[] | null = null;
let liveDevice: Array<{ buf: DeviceArray; owner: ActiveBackend }> = [];
// `process` is missing in a browser, where the pool runs too.
const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
let debug = env?.TRANSFUSION_POOL_DEBUG === "1";

/** Turns NaN-filling of returned buffers on or off (tests). */
export function setPoolDebug(on: boolean): void {
  debug = on;
}

function takeHost(n: number): Float32Array | undefined {
  const stack = freeHost.get(n);
  return stack && stack.length > 0 ? stack.pop() : undefined;
}

/** Returns a zero-filled host buffer of length n (pooled inside an arena). */
export function allocHost(n: number): Float32Array {
  if (liveHost === null) return new Float32Array(n);
  let b = takeHost(n);
  if (b) b.fill(0);
  else b = new Float32Array(n);
  liveHost.push(b);
  return b;
}

function allocRawHost(n: number): Float32Array {
  if (liveHost === null) return new Float32Array(n);
  const b = takeHost(n) ?? new Float32Array(n);
  liveHost.push(b);
  return b;
}

/**
 * Returns a buffer of length n of the active backend (pooled inside an arena), zero-filled
 * unless `raw` (the caller then overwrites every element).
 */
export function alloc(n: number, raw = false): FloatStore {
  const be = backend();
  if (!be.device) return raw ? allocRawHost(n) : allocHost(n);
  if (liveHost === null) return be.alloc(n);
  const stack = freeDevice.get(be)?.get(n);
  let b = stack && stack.length > 0 ? stack.pop() : undefined;
  if (b && !raw) be.fill(b, n, 0);
  b ??= be.alloc(n) as DeviceArray;
  liveDevice.push({ buf: b, owner: be });
  return b;
}

/**
 * Returns fn's result, with every buffer allocated by alloc/allocRaw during fn returned to the
 * pool afterwards. Arenas nest: an inner arena's buffers stay live until the outermost closes.
 */
export function withArena<T>(fn: () => T): T {
  if (liveHost !== null) return fn();
  liveHost = [];
  try {
    return fn();
  } finally {
    closeArena();
  }
}

/** Returns every buffer of the open arena to the pool and closes it. */
function closeArena(): void {
  const host = liveHost ?? [];
  const device = liveDevice;
  liveHost = null;
  liveDevice = [];
  for (const b of host) {
    if (debug) b.fill(Number.NaN);
    let stack = freeHost.get(b.length);
    if (!stack) {
      stack = [];
      freeHost.set(b.length, stack);
    }
    stack.push(b);
  }
  for (const { buf, owner } of device) {
    if (debug) owner.fill(buf, buf.length, Number.NaN);
    let byLength = freeDevice.get(owner);
    if (!byLength) {
      byLength = new Map();
      freeDevice.set(owner, byLength);
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
  if (liveHost !== null) throw new Error("withArenaAsync: an arena is already open");
  liveHost = [];
  try {
    return await fn();
  } finally {
    closeArena();
  }
}

/** Returns the bytes held by the pool (for benches and memory tests). */
export function pooledBytes(): number {
  let s = 0;
  for (const stack of freeHost.values()) for (const b of stack) s += b.byteLength;
  for (const byLength of freeDevice.values()) {
    for (const stack of byLength.values()) for (const b of stack) s += b.length * 4;
  }
  return s;
}

/** Empties the pool (the buffers become garbage). */
export function clearPool(): void {
  freeHost.clear();
  freeDevice.clear();
}
