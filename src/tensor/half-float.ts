/**
 * 16-bit float formats found in checkpoints, decoded to float32 (both widen exactly).
 * Input is little-endian raw bytes, as stored in safetensors files.
 */

/**
 * Returns IEEE 754 half-precision values as float32. NaNs come back as the canonical NaN
 * (payload and sign are not kept).
 */
export function decodeF16(raw: Uint8Array): Float32Array {
  const n = raw.byteLength >>> 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const h = raw[2 * i]! | (raw[2 * i + 1]! << 8);
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) {
      out[i] = sign * mant * 2 ** -24; // zero and subnormals: no implicit leading 1
    } else if (exp === 31) {
      out[i] = mant === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
    } else {
      out[i] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
    }
  }
  return out;
}

/** Returns bfloat16 values as float32, bit for bit: bfloat16 is float32's upper half. */
export function decodeBf16(raw: Uint8Array): Float32Array {
  const n = raw.byteLength >>> 1;
  const out = new Float32Array(n);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < n; i++) bits[i] = ((raw[2 * i]! | (raw[2 * i + 1]! << 8)) << 16) >>> 0;
  return out;
}
