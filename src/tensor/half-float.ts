/**
 * 16-bit float formats found in checkpoints, decoded to float32 (both widen exactly), and
 * float32 rounded to half precision for checkpoints shipped at half the size.
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

/**
 * Returns float32 values as IEEE 754 half-precision bit patterns, rounded to nearest (ties to
 * even): values beyond ±65504 become ±Infinity, values below 2⁻²⁴ become (signed) subnormals
 * or zero, NaN stays NaN. decodeF16 widens them back exactly.
 */
export function encodeF16(x: Float32Array): Uint16Array {
  const out = new Uint16Array(x.length);
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
  for (let i = 0; i < x.length; i++) {
    const b = bits[i]!;
    const sign = (b >>> 16) & 0x8000;
    const exp = (b >>> 23) & 0xff;
    const mant = b & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0);
      continue;
    }
    const e = exp - 127 + 15;
    if (e >= 31) {
      out[i] = sign | 0x7c00;
    } else if (e <= 0) {
      // Subnormal half: the 24-bit significand (implicit 1 included) shifted right.
      if (e < -10) {
        out[i] = sign;
        continue;
      }
      const m = mant | 0x800000;
      const shift = 14 - e;
      let h = m >>> shift;
      const rem = m & ((1 << shift) - 1);
      const half = 1 << (shift - 1);
      if (rem > half || (rem === half && h & 1)) h++;
      out[i] = sign | h;
    } else {
      let h = (e << 10) | (mant >>> 13);
      const rem = mant & 0x1fff;
      // A carry out of the mantissa moves into the exponent, which is the right result.
      if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
      out[i] = sign | h;
    }
  }
  return out;
}
