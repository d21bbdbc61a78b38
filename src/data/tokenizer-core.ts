/**
 * Byte-level BPE tokenizer (GPT-2 style), saved and loaded as a Hugging Face
 * `tokenizer.json` that `tokenizers` / tokenizers.js encode identically.
 *
 * Id layout of tokenizers made by `trainBpe`: 0–255 are the bytes (id = byte value),
 * 256–259 are the special tokens <|boi|>, <|eoi|>, <|pad|>, <|eod|> (then any extra special
 * tokens), and merged tokens follow in the order they were learned. Loaded files may use
 * any layout; the special-token ids are looked up by name.
 *
 * Text handling, deliberately:
 * - Encoding goes through UTF-8. A lone surrogate (invalid UTF-16) becomes U+FFFD, exactly
 *   as TextEncoder does, so decode(encode(s)) === s for every well-formed string and equals
 *   s with each lone surrogate replaced by U+FFFD otherwise.
 * - Special-token text in the input ("<|boi|>") is encoded as ordinary text unless
 *   `allowSpecial` is set, so user text cannot forge image markers. (Hugging Face always
 *   matches added tokens in the input; with `allowSpecial: true` we do the same.)
 * - Decoding ids that cut a multi-byte character in pieces yields U+FFFD for the broken
 *   bytes (WHATWG UTF-8 decoding: one U+FFFD per maximal invalid subsequence). A leading
 *   byte-order mark is kept, not stripped.
 *
 * No files here (this module runs in a browser too): `./tokenizer.ts` adds `Tokenizer.load`
 * and `save` for Node.
 */
import { BYTE_TO_CHAR, preTokenize, symbolsToBytes, toWellFormed } from "./byte-level.js";
import {
  fromHfJson,
  type HfTokenizerJson,
  type TokenizerParts,
  toHfJson,
} from "./tokenizer-json.js";

export type { HfTokenizerJson, TokenizerParts };

/** The special tokens every tokenizer has, by role. */
export const SPECIAL_TOKENS = {
  boi: "<|boi|>",
  eoi: "<|eoi|>",
  pad: "<|pad|>",
  eod: "<|eod|>",
} as const;

export interface EncodeOptions {
  /** Turn special-token text in the input into special ids (default false). */
  allowSpecial?: boolean;
}

/** Pair keys are a * vocabSize + b and heap keys rank * 2^32 + position: both stay exact. */
export const MAX_VOCAB_SIZE = 1 << 21;

/** Words are cached up to this many UTF-16 units, as in tokenizers.js. */
const CACHE_MAX_WORD = 256;
const CACHE_MAX_ENTRIES = 200_000;

const utf8Encoder = new TextEncoder();
// ignoreBOM: a leading U+FEFF is text like any other and must survive a round trip.
const utf8Decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

export class BpeTokenizer {
  /** Number of ids, special tokens included. */
  readonly vocabSize: number;
  /** Id of <|boi|> (begin of image). */
  readonly boiId: number;
  /** Id of <|eoi|> (end of image). */
  readonly eoiId: number;
  /** Id of <|pad|>. */
  readonly padId: number;
  /** Id of <|eod|> (end of document). */
  readonly eodId: number;

  private readonly parts: TokenizerParts;
  private readonly tokenIds = new Map<string, number>();
  /** UTF-8 bytes of each ordinary token; null for special tokens. */
  private readonly tokenBytes: (Uint8Array | null)[];
  private readonly byteIds = new Int32Array(256);
  /** (left id * vocabSize + right id) → merge rank. */
  private readonly pairRank = new Map<number, number>();
  /** merge rank → id of the merged token. */
  private readonly rankResult: Int32Array;
  private readonly specialPattern: RegExp | null;
  private readonly cache = new Map<string, number[]>();

  /**
   * Builds a tokenizer from parts that are already valid (as produced by trainBpe or
   * checked by fromJSON); only the special tokens are checked here.
   */
  constructor(parts: TokenizerParts, source = "tokenizer") {
    this.parts = parts;
    this.vocabSize = parts.tokens.length;
    if (this.vocabSize > MAX_VOCAB_SIZE) {
      throw new Error(`${source}: vocabulary of ${this.vocabSize} exceeds ${MAX_VOCAB_SIZE}`);
    }
    for (const [id, token] of parts.tokens.entries()) this.tokenIds.set(token, id);
    const special = new Set(parts.specialIds);
    this.tokenBytes = parts.tokens.map((t, id) => (special.has(id) ? null : symbolsToBytes(t)));
    for (let b = 0; b < 256; b++) this.byteIds[b] = this.tokenIds.get(BYTE_TO_CHAR[b]!)!;
    this.rankResult = new Int32Array(parts.merges.length);
    parts.merges.forEach(([a, b], rank) => {
      this.pairRank.set(a * this.vocabSize + b, rank);
      this.rankResult[rank] = this.tokenIds.get(parts.tokens[a]! + parts.tokens[b]!)!;
    });

    const specialId = (content: string): number => {
      const id = this.tokenIds.get(content);
      if (id === undefined || !special.has(id)) {
        throw new Error(`${source}: field "added_tokens" lacks the special token ${content}`);
      }
      return id;
    };
    this.boiId = specialId(SPECIAL_TOKENS.boi);
    this.eoiId = specialId(SPECIAL_TOKENS.eoi);
    this.padId = specialId(SPECIAL_TOKENS.pad);
    this.eodId = specialId(SPECIAL_TOKENS.eod);

    // Longest first, so that at each position the longest special token wins, as in the
    // Hugging Face added-token splitter.
    const contents = [...special]
      .map((id) => parts.tokens[id]!)
      .sort((x, y) => y.length - x.length);
    this.specialPattern =
      contents.length > 0 ? new RegExp(contents.map(escapeRegExp).join("|"), "g") : null;
  }

  /** Returns the token ids of `text`. */
  encode(text: string, options: EncodeOptions = {}): number[] {
    if (typeof text !== "string") {
      throw new TypeError(`Tokenizer.encode: expected a string, got ${typeof text}`);
    }
    const out: number[] = [];
    const pattern = options.allowSpecial ? this.specialPattern : null;
    if (pattern === null) {
      this.encodeOrdinary(text, out);
      return out;
    }
    let last = 0;
    for (const match of text.matchAll(pattern)) {
      this.encodeOrdinary(text.slice(last, match.index), out);
      out.push(this.tokenIds.get(match[0])!);
      last = match.index! + match[0].length;
    }
    this.encodeOrdinary(text.slice(last), out);
    return out;
  }

  /** Returns the text of `ids`; special tokens appear as their literal text. */
  decode(ids: ArrayLike<number>): string {
    let text = "";
    let buf = new Uint8Array(256);
    let len = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new RangeError(
          `Tokenizer.decode: ids[${i}] = ${id} is not a token id (vocabulary size ${this.vocabSize})`,
        );
      }
      const bytes = this.tokenBytes[id];
      if (bytes === null || bytes === undefined) {
        // Bytes on either side of a special token are decoded separately, like HF does.
        text += utf8Decoder.decode(buf.subarray(0, len)) + this.parts.tokens[id];
        len = 0;
        continue;
      }
      if (len + bytes.length > buf.length) {
        const bigger = new Uint8Array(Math.max(2 * buf.length, len + bytes.length));
        bigger.set(buf.subarray(0, len));
        buf = bigger;
      }
      buf.set(bytes, len);
      len += bytes.length;
    }
    return text + utf8Decoder.decode(buf.subarray(0, len));
  }

  /** Returns the id of a token (byte-level form, e.g. "Ġthe"; literal text for specials). */
  tokenToId(token: string): number | undefined {
    return this.tokenIds.get(token);
  }

  /** Returns the token of an id (byte-level form; literal text for specials). */
  idToToken(id: number): string | undefined {
    return this.parts.tokens[id];
  }

  /** Returns the Hugging Face `tokenizer.json` object for this tokenizer. */
  toJSON(): HfTokenizerJson {
    return toHfJson(this.parts);
  }

  /**
   * Returns the tokenizer described by a parsed `tokenizer.json`; errors name `source`. Called
   * on a subclass (the Node `Tokenizer`), it returns an instance of that subclass.
   */
  static fromJSON<T extends BpeTokenizer>(
    this: new (
      parts: TokenizerParts,
      source?: string,
    ) => T,
    json: unknown,
    source = "tokenizer.json",
  ): T {
    return new this(fromHfJson(json, source), source);
  }

  /** Returns the tokenizer stored in the text of a `tokenizer.json`; errors name `source`. */
  static fromText<T extends BpeTokenizer>(
    this: new (
      parts: TokenizerParts,
      source?: string,
    ) => T,
    text: string,
    source = "tokenizer.json",
  ): T {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new Error(`${source}: not valid JSON: ${(err as Error).message}`, { cause: err });
    }
    return new this(fromHfJson(json, source), source);
  }

  /** Returns the text of this tokenizer's `tokenizer.json` (pretty-printed, newline-ended). */
  toText(): string {
    return `${JSON.stringify(this.toJSON(), null, 2)}\n`;
  }

  /** Appends the ids of `text`, which holds no special tokens to recognise. */
  private encodeOrdinary(text: string, out: number[]): void {
    if (text.length === 0) return;
    for (const word of preTokenize(toWellFormed(text))) {
      let ids = this.cache.get(word);
      if (ids === undefined) {
        ids = this.encodeWord(word);
        if (word.length < CACHE_MAX_WORD) {
          // A full reset is cheaper than LRU bookkeeping and rare in practice.
          if (this.cache.size >= CACHE_MAX_ENTRIES) this.cache.clear();
          this.cache.set(word, ids);
        }
      }
      for (let i = 0; i < ids.length; i++) out.push(ids[i]!);
    }
  }

  /**
   * Returns the ids of one pre-token: starting from its bytes, repeatedly merge the adjacent
   * pair of lowest rank, leftmost first (the rule tokenizers.js and the Rust crate follow).
   * A heap keeps this O(n log n), so long runs (e.g. 10k spaces) stay fast.
   */
  private encodeWord(word: string): number[] {
    const bytes = utf8Encoder.encode(word);
    const n = bytes.length;
    if (n === 1) return [this.byteIds[bytes[0]!]!];
    const s = scratch(n);
    const { id, next, prev } = s;
    for (let i = 0; i < n; i++) {
      id[i] = this.byteIds[bytes[i]!]!;
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
    }
    const heap = s.heap;
    let size = 0;
    const push = (i: number) => {
      const rank = this.pairRank.get(id[i]! * this.vocabSize + id[next[i]!]!);
      if (rank !== undefined) size = heapPush(heap, size, rank * 4294967296 + i);
    };
    for (let i = 0; i + 1 < n; i++) push(i);
    while (size > 0) {
      const top = heap[0]!;
      size = heapPop(heap, size);
      const rank = Math.floor(top / 4294967296);
      const i = top - rank * 4294967296;
      const j = next[i]!;
      // Stale entry: symbol i was absorbed, or its right neighbour changed since the push.
      if (id[i]! < 0 || j < 0 || this.pairRank.get(id[i]! * this.vocabSize + id[j]!) !== rank) {
        continue;
      }
      id[i] = this.rankResult[rank]!;
      id[j] = -1;
      const k = next[j]!;
      next[i] = k;
      if (k >= 0) prev[k] = i;
      if (prev[i]! >= 0) push(prev[i]!);
      if (k >= 0) push(i);
    }
    const out: number[] = [];
    for (let i = 0; i >= 0; i = next[i]!) out.push(id[i]!);
    return out;
  }
}

interface Scratch {
  id: Int32Array;
  next: Int32Array;
  prev: Int32Array;
  heap: Float64Array;
}

let shared: Scratch = makeScratch(1024);

/** Returns work arrays for a word of n bytes (reused across calls; encoding is synchronous). */
function scratch(n: number): Scratch {
  if (shared.id.length < n) shared = makeScratch(2 * n);
  return shared;
}

function makeScratch(n: number): Scratch {
  // Each merge pushes at most two entries, so the heap never exceeds 3n.
  return {
    id: new Int32Array(n),
    next: new Int32Array(n),
    prev: new Int32Array(n),
    heap: new Float64Array(3 * n),
  };
}

/** Returns the new heap size after inserting `key` into the min-heap. */
function heapPush(heap: Float64Array, size: number, key: number): number {
  let i = size;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (heap[parent]! <= key) break;
    heap[i] = heap[parent]!;
    i = parent;
  }
  heap[i] = key;
  return size + 1;
}

/** Returns the new heap size after removing the minimum of the min-heap. */
function heapPop(heap: Float64Array, size: number): number {
  const last = heap[--size]!;
  let i = 0;
  for (;;) {
    let child = 2 * i + 1;
    if (child >= size) break;
    if (child + 1 < size && heap[child + 1]! < heap[child]!) child++;
    if (heap[child]! >= last) break;
    heap[i] = heap[child]!;
    i = child;
  }
  heap[i] = last;
  return size;
}

function escapeRegExp(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|]/g, "\\$&");
}
