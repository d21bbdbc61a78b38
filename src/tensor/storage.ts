/**
 * Where a tensor's float values live: a Float32Array in JavaScript memory (the js and native
 * backends), or a device backend's array (webgpu), which host code cannot index and reaches
 * only through an asynchronous read (`Tensor.read`).
 */

/** A device backend's array handle: its length in elements, and nothing host code can index. */
export interface DeviceArray {
  readonly length: number;
  /** The device backend that owns it ("webgpu"). */
  readonly device: string;
}

export type FloatStore = Float32Array | DeviceArray;

/** Returns whether `x` is a host Float32Array (not a device array). */
export function isHost(x: FloatStore): x is Float32Array {
  return x instanceof Float32Array;
}
