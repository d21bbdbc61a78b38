/**
 * Conversion between our tokenizer's parts and a Hugging Face `tokenizer.json` (BPE model,
 * ByteLevel pre-tokenizer and decoder, special tokens as `added_tokens`), with validation
 * that names the file and the field when something is wrong.
 */
import { BYTE_TO_CHAR, symbolsToBytes } from "./byte-level.js";

/** Everything that defines a byte-level BPE tokenizer. */
export interface TokenizerParts {
  /** id → token: a byte-level string for BPE tokens, the literal text for special tokens. */
  tokens: string[];
  /** Ids of the special tokens (Hugging Face "added tokens"). */
  specialIds: number[];
  /** Merges in priority order (rank 0 first), as pairs of token ids. */
  merges: [number, number][];
}

export interface HfAddedToken {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

/** The subset of the Hugging Face `tokenizer.json` schema that we write. */
export interface HfTokenizerJson {
  version: string;
  truncation: null;
  padding: null;
  added_tokens: HfAddedToken[];
  normalizer: null;
  pre_tokenizer: HfByteLevel;
  post_processor: null;
  decoder: HfByteLevel;
  model: {
    type: "BPE";
    dropout: null;
    unk_token: null;
    continuing_subword_prefix: null;
    end_of_word_suffix: null;
    fuse_unk: boolean;
    byte_fallback: boolean;
    ignore_merges: boolean;
    vocab: Record<string, number>;
    merges: string[];
  };
}

interface HfByteLevel {
  type: "ByteLevel";
  add_prefix_space: boolean;
  trim_offsets: boolean;
  use_regex: boolean;
}

const BYTE_LEVEL: HfByteLevel = {
  type: "ByteLevel",
  add_prefix_space: false,
  trim_offsets: true,
  use_regex: true,
};

/** Returns the Hugging Face `tokenizer.json` object for `parts`. */
export function toHfJson(parts: TokenizerParts): HfTokenizerJson {
  const special = new Set(parts.specialIds);
  const vocab: Record<string, number> = {};
  // Special tokens are in the model vocabulary too (as the Hugging Face trainer does), so
  // the vocabulary is exactly ids 0..V-1 whichever side reads it.
  for (const [id, token] of parts.tokens.entries()) define(vocab, token, id);
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [...special]
      .sort((a, b) => a - b)
      .map((id) => ({
        id,
        content: parts.tokens[id]!,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      })),
    normalizer: null,
    pre_tokenizer: { ...BYTE_LEVEL },
    post_processor: null,
    decoder: { ...BYTE_LEVEL },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      // The "left right" string form is read by every tokenizers version; byte-level tokens
      // never contain a space (the space byte is "Ġ"), so it is unambiguous.
      merges: parts.merges.map(([a, b]) => `${parts.tokens[a]} ${parts.tokens[b]}`),
    },
  };
}

/**
 * Returns the parts described by a parsed `tokenizer.json`, or throws an error starting with
 * `source` and naming the offending field. Accepts exactly the features our encoder
 * reproduces: BPE without dropout/unk/suffixes/byte-fallback/ignore_merges, ByteLevel
 * pre-tokenizer with the GPT-2 regex and no prefix space, no normalizer, special added
 * tokens without strip/single-word rules.
 */
export function fromHfJson(json: unknown, source: string): TokenizerParts {
  const fail = (field: string, msg: string): never => {
    throw new Error(`${source}: field "${field}" ${msg}`);
  };
  const root = objectAt(json, "(root)", fail);
  if (root["normalizer"] != null)
    fail("normalizer", "must be null (normalizers are not supported)");
  checkByteLevel(root["pre_tokenizer"], "pre_tokenizer", fail);
  checkByteLevel(root["decoder"], "decoder", fail);
  const post = root["post_processor"];
  if (post != null && objectAt(post, "post_processor", fail)["type"] !== "ByteLevel") {
    fail("post_processor", "must be null or ByteLevel");
  }

  const model = objectAt(root["model"], "model", fail);
  if (model["type"] !== "BPE") fail("model.type", `must be "BPE", got ${show(model["type"])}`);
  for (const key of ["dropout", "continuing_subword_prefix", "end_of_word_suffix"]) {
    if (model[key] != null && model[key] !== "") fail(`model.${key}`, "must be null");
  }
  for (const key of ["byte_fallback", "ignore_merges"]) {
    if (model[key] != null && model[key] !== false) fail(`model.${key}`, "must be false");
  }

  const vocab = objectAt(model["vocab"], "model.vocab", fail);
  const added = root["added_tokens"] ?? [];
  if (!Array.isArray(added)) fail("added_tokens", "must be an array");
  // Ids must be dense, so none can reach past the number of entries that name a token.
  const idLimit = Object.keys(vocab).length + (added as unknown[]).length;
  const tokens: string[] = [];
  const claim = (id: number, token: string, field: string) => {
    if (id >= idLimit) fail(field, `has id ${id}, beyond the ${idLimit} tokens declared`);
    if (tokens[id] !== undefined && tokens[id] !== token) {
      fail(field, `gives id ${id} to ${show(token)}, already used by ${show(tokens[id])}`);
    }
    tokens[id] = token;
  };
  for (const [token, id] of Object.entries(vocab)) {
    if (!isId(id)) fail(`model.vocab[${show(token)}]`, `must be a non-negative integer id`);
    claim(id as number, token, `model.vocab[${show(token)}]`);
  }

  const specialIds: number[] = [];
  (added as unknown[]).forEach((entry, i) => {
    const at = `added_tokens[${i}]`;
    const t = objectAt(entry, at, fail);
    if (!isId(t["id"])) fail(`${at}.id`, "must be a non-negative integer");
    if (typeof t["content"] !== "string" || t["content"] === "") {
      fail(`${at}.content`, "must be a non-empty string");
    }
    if (t["special"] !== true) fail(`${at}.special`, "must be true (only special tokens)");
    for (const flag of ["single_word", "lstrip", "rstrip", "normalized"]) {
      if (t[flag] != null && t[flag] !== false) fail(`${at}.${flag}`, "must be false");
    }
    claim(t["id"] as number, t["content"] as string, `${at}.id`);
    specialIds.push(t["id"] as number);
  });

  for (let id = 0; id < tokens.length; id++) {
    if (tokens[id] === undefined) fail("model.vocab", `has no token with id ${id}`);
  }
  const special = new Set(specialIds);
  const ids = new Map<string, number>();
  tokens.forEach((token, id) => {
    if (!special.has(id) && symbolsToBytes(token) === null) {
      fail(`model.vocab[${show(token)}]`, "is not a byte-level token");
    }
    ids.set(token, id);
  });
  for (let b = 0; b < 256; b++) {
    const id = ids.get(BYTE_TO_CHAR[b]!);
    if (id === undefined || special.has(id)) {
      fail("model.vocab", `lacks the byte-level token ${show(BYTE_TO_CHAR[b])} for byte ${b}`);
    }
  }

  const rawMerges = model["merges"];
  if (!Array.isArray(rawMerges)) fail("model.merges", "must be an array");
  const seen = new Set<string>();
  const merges = (rawMerges as unknown[]).map((m, i): [number, number] => {
    const at = `model.merges[${i}]`;
    const pair = typeof m === "string" ? m.split(" ") : m;
    if (!Array.isArray(pair) || pair.length !== 2 || !pair.every((p) => typeof p === "string")) {
      return fail(at, `must be "left right" or ["left", "right"], got ${show(m)}`);
    }
    const [left, right] = pair as [string, string];
    const a = ids.get(left);
    const b = ids.get(right);
    if (a === undefined || special.has(a)) return fail(at, `uses unknown token ${show(left)}`);
    if (b === undefined || special.has(b)) return fail(at, `uses unknown token ${show(right)}`);
    const merged = ids.get(left + right);
    if (merged === undefined || special.has(merged)) {
      return fail(at, `produces ${show(left + right)}, which is not in model.vocab`);
    }
    const key = `${a},${b}`;
    if (seen.has(key)) return fail(at, `repeats the merge ${show(`${left} ${right}`)}`);
    seen.add(key);
    return [a, b];
  });
  return { tokens, specialIds, merges };
}

function checkByteLevel(
  value: unknown,
  field: string,
  fail: (field: string, msg: string) => never,
): void {
  const o = objectAt(value, field, fail);
  if (o["type"] !== "ByteLevel")
    fail(`${field}.type`, `must be "ByteLevel", got ${show(o["type"])}`);
  // Both Hugging Face implementations default add_prefix_space differently, so demand it.
  if (field === "pre_tokenizer" && o["add_prefix_space"] !== false) {
    fail(`${field}.add_prefix_space`, "must be false");
  }
  if (o["use_regex"] != null && o["use_regex"] !== true) fail(`${field}.use_regex`, "must be true");
}

function objectAt(
  value: unknown,
  field: string,
  fail: (field: string, msg: string) => never,
): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return fail(field, `must be an object, got ${show(value)}`);
  }
  return value as Record<string, unknown>;
}

function isId(x: unknown): boolean {
  return typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
}

function show(x: unknown): string {
  if (x === undefined) return "nothing";
  const s = JSON.stringify(x) ?? String(x);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Sets an own property even for keys like "__proto__". */
function define(obj: Record<string, number>, key: string, value: number): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}
