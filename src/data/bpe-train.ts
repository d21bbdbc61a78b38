/**
 * Byte-level BPE training (as GPT-2 / Hugging Face `BpeTrainer`): split text into pre-tokens,
 * count each distinct pre-token once, then repeatedly merge the most frequent adjacent pair
 * of symbols. Pair counts are kept up to date incrementally (each pair knows which words
 * contain it), so a merge costs time proportional to the words it touches, not the corpus.
 */
import { BYTE_TO_CHAR, preTokenize, toWellFormed } from "./byte-level.js";
import { MAX_VOCAB_SIZE, SPECIAL_TOKENS, Tokenizer } from "./tokenizer.js";

export interface BpeTrainOptions {
  /** Total number of ids: 256 bytes + special tokens + merges. */
  vocabSize: number;
  /** Pairs seen fewer times than this are never merged (default 2). */
  minFrequency?: number;
  /** Extra special tokens, placed after <|boi|>, <|eoi|>, <|pad|>, <|eod|>. */
  specialTokens?: string[];
  /** Called with merges learned and merges wanted, every 32 merges and at the end. */
  onProgress?: (done: number, total: number) => void;
}

/**
 * Returns a tokenizer trained on `texts`.
 *
 * Ids: 0–255 are the bytes, then the special tokens (<|boi|> = 256, <|eoi|> = 257,
 * <|pad|> = 258, <|eod|> = 259, then `specialTokens`), then merges in the order learned.
 * Training stops at exactly `vocabSize` ids, or earlier if no pair occurs `minFrequency`
 * times (small corpora); `tokenizer.vocabSize` is the size reached. Among pairs of equal
 * frequency the one with the smallest (left id, right id) wins, so training is deterministic
 * and independent of the order of distinct words.
 */
export function trainBpe(texts: Iterable<string>, options: BpeTrainOptions): Tokenizer {
  const { vocabSize, minFrequency = 2 } = options;
  const tokens: string[] = BYTE_TO_CHAR.slice();
  const specials = [
    ...new Set([...Object.values(SPECIAL_TOKENS), ...(options.specialTokens ?? [])]),
  ];
  for (const s of specials) {
    if (typeof s !== "string" || s.length === 0 || toWellFormed(s) !== s) {
      throw new Error(
        `trainBpe: options.specialTokens: ${JSON.stringify(s)} is not a usable token`,
      );
    }
    if (tokens.includes(s)) {
      throw new Error(`trainBpe: options.specialTokens: ${JSON.stringify(s)} is a byte token`);
    }
  }
  const specialIds = specials.map((s) => tokens.push(s) - 1);
  if (!Number.isInteger(vocabSize) || vocabSize < tokens.length || vocabSize > MAX_VOCAB_SIZE) {
    throw new Error(
      `trainBpe: options.vocabSize must be an integer in [${tokens.length}, ${MAX_VOCAB_SIZE}], got ${vocabSize}`,
    );
  }
  if (!Number.isInteger(minFrequency) || minFrequency < 1) {
    throw new Error(
      `trainBpe: options.minFrequency must be a positive integer, got ${minFrequency}`,
    );
  }

  const words = countWords(texts);
  const merges: [number, number][] = [];
  const tokenIds = new Map(tokens.map((t, id) => [t, id]));
  const specialSet = new Set(specials);
  const state = new PairState(words, vocabSize);
  const wanted = vocabSize - tokens.length;
  const first = tokens.length;
  while (tokens.length < vocabSize) {
    if ((tokens.length - first) % 32 === 0) options.onProgress?.(tokens.length - first, wanted);
    const best = state.popBest();
    if (best === null || best.count < minFrequency) break;
    const a = Math.floor(best.key / vocabSize);
    const b = best.key - a * vocabSize;
    const merged = tokens[a]! + tokens[b]!;
    // A merged token spelling a special token would make the two indistinguishable in
    // tokenizer.json, so such a pair is simply never merged.
    if (specialSet.has(merged)) {
      state.forget(best.key);
      continue;
    }
    // Defensive, as in the Hugging Face trainer: if two pairs ever spelled the same string
    // ("ab"+"c", "a"+"bc"), both merges would share one id. (Left-to-right merging of every
    // occurrence seems to rule this out; random corpora never produced it.)
    let id = tokenIds.get(merged);
    if (id === undefined) {
      id = tokens.push(merged) - 1;
      tokenIds.set(merged, id);
    }
    merges.push([a, b]);
    state.merge(best.key, a, b, id);
  }
  options.onProgress?.(wanted, wanted);
  return new Tokenizer({ tokens, specialIds, merges }, "trainBpe");
}

interface Words {
  /** Symbols of each distinct pre-token (starts as its bytes; shrinks as pairs merge). */
  symbols: Int32Array[];
  /** Current number of symbols in each word. */
  lengths: Int32Array;
  /** How often each word occurs in the corpus. */
  counts: Float64Array;
}

/** Returns the distinct pre-tokens of `texts` with their frequencies, as byte-id arrays. */
function countWords(texts: Iterable<string>): Words {
  const freq = new Map<string, number>();
  let index = 0;
  for (const text of texts) {
    if (typeof text !== "string") throw new TypeError(`trainBpe: texts[${index}] is not a string`);
    for (const word of preTokenize(toWellFormed(text))) freq.set(word, (freq.get(word) ?? 0) + 1);
    index++;
  }
  const encoder = new TextEncoder();
  const symbols: Int32Array[] = [];
  const lengths = new Int32Array(freq.size);
  const counts = new Float64Array(freq.size);
  for (const [word, count] of freq) {
    // Byte b has id b, so the UTF-8 bytes are already the initial symbols.
    const bytes = Int32Array.from(encoder.encode(word));
    lengths[symbols.length] = bytes.length;
    counts[symbols.length] = count;
    symbols.push(bytes);
  }
  return { symbols, lengths, counts };
}

/**
 * Pair frequencies with the words that contain each pair, and a max-heap to find the most
 * frequent pair. Heap entries may be stale (a count changed after the push); they are
 * checked when popped. Every increase pushes a fresh entry, so each live pair always has an
 * entry whose count is at least its true count, and the first valid pop is the true maximum.
 */
class PairState {
  private readonly pairCounts = new Map<number, number>();
  /** Words that contain (or once contained) each pair; may hold duplicates and stale words. */
  private readonly pairWords = new Map<number, number[]>();
  private readonly heap = new PairHeap();
  /** Per-word marker of the last merge that visited it, to skip duplicates in pairWords. */
  private readonly visited: Int32Array;
  private mergeCount = 0;

  constructor(
    private readonly words: Words,
    private readonly stride: number,
  ) {
    this.visited = new Int32Array(words.symbols.length).fill(-1);
    const { symbols, lengths, counts } = words;
    for (let w = 0; w < symbols.length; w++) {
      const sym = symbols[w]!;
      for (let i = 0; i + 1 < lengths[w]!; i++) {
        const key = sym[i]! * stride + sym[i + 1]!;
        this.pairCounts.set(key, (this.pairCounts.get(key) ?? 0) + counts[w]!);
        this.addWord(key, w);
      }
    }
    for (const [key, count] of this.pairCounts) this.heap.push(count, key);
  }

  /** Returns the most frequent pair (smallest key on ties), or null when none is left. */
  popBest(): { key: number; count: number } | null {
    while (this.heap.size > 0) {
      const { count, key } = this.heap.pop();
      const current = this.pairCounts.get(key);
      if (current === undefined) continue;
      if (current === count) return { key, count };
      // The count fell since this entry was pushed; re-file it under its true count.
      if (current < count) this.heap.push(current, key);
    }
    return null;
  }

  /** Returns nothing; drops a pair so that it is never merged. */
  forget(key: number): void {
    this.pairCounts.delete(key);
    this.pairWords.delete(key);
  }

  /** Returns nothing; replaces every (a, b) by `merged` and updates the pair counts. */
  merge(key: number, a: number, b: number, merged: number): void {
    const stride = this.stride;
    const { symbols, lengths, counts } = this.words;
    const touched = this.pairWords.get(key) ?? [];
    this.forget(key);
    const mark = this.mergeCount++;
    const delta = new Map<number, number>();
    const change = (pair: number, by: number) => delta.set(pair, (delta.get(pair) ?? 0) + by);
    for (const w of touched) {
      if (this.visited[w] === mark) continue;
      this.visited[w] = mark;
      const sym = symbols[w]!;
      const n = lengths[w]!;
      const f = counts[w]!;
      // Rewrite in place, left to right, non-overlapping (out ≤ i, so reads stay ahead of
      // writes). The neighbour on the left is the already rewritten symbol, which makes
      // the bookkeeping right for runs such as "a b a b" and "a a a".
      let out = 0;
      let i = 0;
      while (i < n) {
        if (i + 1 < n && sym[i] === a && sym[i + 1] === b) {
          if (out > 0) {
            const left = sym[out - 1]!;
            change(left * stride + a, -f);
            change(left * stride + merged, f);
            this.addWord(left * stride + merged, w);
          }
          if (i + 2 < n) {
            const right = sym[i + 2]!;
            change(b * stride + right, -f);
            change(merged * stride + right, f);
            this.addWord(merged * stride + right, w);
          }
          sym[out++] = merged;
          i += 2;
        } else {
          sym[out++] = sym[i++]!;
        }
      }
      lengths[w] = out;
    }
    for (const [pair, by] of delta) {
      // The merged pair itself is gone everywhere; intermediate entries may cancel to 0.
      if (pair === key || by === 0) continue;
      const count = (this.pairCounts.get(pair) ?? 0) + by;
      if (count <= 0) {
        this.forget(pair);
      } else {
        this.pairCounts.set(pair, count);
        if (by > 0) this.heap.push(count, pair);
      }
    }
  }

  private addWord(key: number, w: number): void {
    const list = this.pairWords.get(key);
    if (list === undefined) this.pairWords.set(key, [w]);
    else if (list[list.length - 1] !== w) list.push(w);
  }
}

/** Max-heap of (count, key), ordered by count descending and then key ascending. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];

  get size(): number {
    return this.counts.length;
  }

  push(count: number, key: number): void {
    const { counts, keys } = this;
    let i = counts.length;
    counts.push(count);
    keys.push(key);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(count, key, counts[p]!, keys[p]!)) break;
      counts[i] = counts[p]!;
      keys[i] = keys[p]!;
      i = p;
    }
    counts[i] = count;
    keys[i] = key;
  }

  pop(): { count: number; key: number } {
    const { counts, keys } = this;
    const top = { count: counts[0]!, key: keys[0]! };
    const count = counts.pop()!;
    const key = keys.pop()!;
    const n = counts.length;
    if (n === 0) return top;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && before(counts[c + 1]!, keys[c + 1]!, counts[c]!, keys[c]!)) c++;
      if (!before(counts[c]!, keys[c]!, count, key)) break;
      counts[i] = counts[c]!;
      keys[i] = keys[c]!;
      i = c;
    }
    counts[i] = count;
    keys[i] = key;
    return top;
  }
}

/** Returns whether entry (c1, k1) ranks before (c2, k2). */
function before(c1: number, k1: number, c2: number, k2: number): boolean {
  return c1 > c2 || (c1 === c2 && k1 < k2);
}
