/** Choosing the next text token from logits: greedy, temperature, top-k and top-p. */
import type { Rng } from "../tensor/rng.js";

export interface TextSampling {
  /** 0 = greedy (the paper's evaluations); otherwise logits are divided by it. */
  temperature: number;
  /** Keep only the k most likely tokens (0 = all). */
  topK: number;
  /** Keep the smallest set of tokens whose probability reaches p (1 = all). */
  topP: number;
}

export const GREEDY: TextSampling = { temperature: 0, topK: 0, topP: 1 };

/** Returns nothing; throws naming the field when sampling settings are invalid. */
export function checkSampling(s: TextSampling): void {
  if (!(s.temperature >= 0 && Number.isFinite(s.temperature)))
    throw new Error(`temperature must be ≥ 0, got ${s.temperature}`);
  if (!(Number.isInteger(s.topK) && s.topK >= 0))
    throw new Error(`topK must be an integer ≥ 0, got ${s.topK}`);
  if (!(s.topP > 0 && s.topP <= 1)) throw new Error(`topP must be in (0, 1], got ${s.topP}`);
}

/**
 * Returns the token chosen from `logits` (one row), never one whose `banned` flag is set.
 * Greedy takes the arg-max (lowest id on ties); otherwise samples from the filtered softmax.
 */
export function sampleToken(
  logits: Float32Array,
  s: TextSampling,
  rng: Rng,
  banned?: Uint8Array,
): number {
  const V = logits.length;
  if (s.temperature === 0) {
    let best = -1;
    let bestV = -Infinity;
    for (let i = 0; i < V; i++) {
      if (banned?.[i]) continue;
      if (logits[i]! > bestV) {
        bestV = logits[i]!;
        best = i;
      }
    }
    if (best < 0) throw new Error("sampleToken: every token is banned");
    return best;
  }
  let ids: number[] = [];
  for (let i = 0; i < V; i++) if (!banned?.[i]) ids.push(i);
  if (ids.length === 0) throw new Error("sampleToken: every token is banned");
  ids.sort((a, b) => logits[b]! - logits[a]! || a - b);
  if (s.topK > 0) ids = ids.slice(0, s.topK);
  const max = logits[ids[0]!]!;
  const w = ids.map((i) => Math.exp((logits[i]! - max) / s.temperature));
  let total = w.reduce((a, b) => a + b, 0);
  if (s.topP < 1) {
    let acc = 0;
    let keep = 0;
    while (keep < ids.length && acc < s.topP * total) acc += w[keep++]!;
    ids = ids.slice(0, keep);
    w.length = keep;
    total = acc;
  }
  let u = rng.uniform() * total;
  for (let k = 0; k < ids.length; k++) {
    u -= w[k]!;
    if (u <= 0) return ids[k]!;
  }
  return ids[ids.length - 1]!;
}
