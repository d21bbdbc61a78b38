/**
 * Buffer reuse for training and sampling steps. Inside `withArena`, float buffers come from a
 * pool keyed by length, and every buffer handed out is returned to the pool when the arena
 * closes. A step allocates the same few sizes every time, so after the first step nothing is
 * allocated, zero-filled by the OS or collected by the GC.
 *
 * The contract: nothing allocated inside an arena may be used after it closes (copy results
 * out first). `TRANSFUSION_POOL_DEBUG=1` fills returned buffers with NaN so a violation
 * shows up as NaN instead of silently wrong numbers.
 */

const free = new Map<number, Float32Array[]>();
let live: Float32Array[] | null = null;
// `process` is missing in a browser, where the pool runs too.
const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
let debug = env?.TRANSFUSION_POOL_DEBUG === "1";

/** Turns NaN-filling of returned buffers on or off (tests). */
export function setPoolDebug(on: boolean): void {
  debug = on;
}

function take(n: number): Float32Array | undefined {
  const stack = free.get(n);
  return stack && stack.length > 0 ? stack.pop() : undefined;
}

/** Returns a zero-filled float buffer of length n (pooled inside an arena). */
export function alloc(n: number): Float32Array {
  if (live === null) return new Float32Array(n);
  let b = take(n);
  if (b) b.fill(0);
  else b = new Float32Array(n);
  live.push(b);
  return b;
}

/** Returns a float buffer of length n whose contents are undefined (caller overwrites all). */
export function allocRaw(n: number): Float32Array {
  if (live === null) return new Float32Array(n);
  const b = take(n) ?? new Float32Array(n);
  live.push(b);
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
    const done = live;
    live = null;
    for (const b of done) {
      if (debug) b.fill(Number.NaN);
      let stack = free.get(b.length);
      if (!stack) {
        stack = [];
        free.set(b.length, stack);
      }
      stack.push(b);
    }
  }
}

/** Returns the bytes held by the pool (for benches and memory tests). */
export function pooledBytes(): number {
  let s = 0;
  for (const stack of free.values()) for (const b of stack) s += b.byteLength;
  return s;
}

/** Empties the pool (the buffers become garbage). */
export function clearPool(): void {
  free.clear();
}
