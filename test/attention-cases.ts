/**
 * Attention test inputs shared by the kernel parity tests (native and WebGPU against js). Runs
 * in Node and in a browser page: no Node imports.
 */
import type { AttentionShape } from "../src/tensor/backends/backend.js";
import { Rng } from "../src/tensor/rng.js";

/** Returns an attention shape with the usual 1/√D scale. */
export function attentionShape(
  B: number,
  T: number,
  S: number,
  H: number,
  Hkv: number,
  D: number,
  causal: boolean,
): AttentionShape {
  return { B, T, S, H, Hkv, D, scale: 1 / Math.sqrt(D), causal };
}

/** A [B, T, S] mask: random visibility with density `p`, with some rows fully masked. */
export function randomMask(s: AttentionShape, seed: number, p: number): Uint8Array {
  const rng = new Rng(seed);
  const m = new Uint8Array(s.B * s.T * s.S);
  for (let i = 0; i < m.length; i++) m[i] = rng.uniform() < p ? 1 : 0;
  for (let b = 0; b < s.B; b++) {
    for (const i of [0, Math.floor(s.T / 2), s.T - 1])
      m.fill(0, (b * s.T + i) * s.S, (b * s.T + i + 1) * s.S);
  }
  return m;
}

/** The Transfusion mask: causal, plus bidirectional inside the image span [lo, hi). */
export function transfusionMask(s: AttentionShape, lo: number, hi: number): Uint8Array {
  const m = new Uint8Array(s.B * s.T * s.S);
  for (let b = 0; b < s.B; b++)
    for (let i = 0; i < s.T; i++)
      for (let j = 0; j < s.S; j++) {
        const inImage = i >= lo && i < hi && j >= lo && j < hi;
        m[(b * s.T + i) * s.S + j] = j <= i || inImage ? 1 : 0;
      }
  return m;
}
