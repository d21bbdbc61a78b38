/**
 * The byte-level layer shared by the BPE trainer and tokenizer, as in GPT-2 and Hugging Face
 * `ByteLevel`: text is split into pre-tokens by a regex, each pre-token is UTF-8 encoded, and
 * each byte is written as one printable character so that vocabularies are plain strings.
 */

/**
 * The GPT-2 pre-tokenizer pattern: English contractions, runs of letters, runs of digits
 * and runs of other symbols (each optionally led by one space), then whitespace. `\s+(?!\S)`
 * leaves the last space of a run to prefix the next word. Identical to the pattern that
 * tokenizers.js applies for `ByteLevel` (use_regex: true), so our splits agree with it.
 *
 * Known divergence: the Rust `tokenizers` crate compiles the same pattern with Oniguruma,
 * where `\s` is Unicode White_Space; JavaScript's `\s` also matches U+FEFF and misses U+0085.
 * Text containing those two characters can therefore split differently in Python/Rust
 * (e.g. "\uFEFF!" is one pre-token there, two here). We follow tokenizers.js, which the
 * tests check id for id.
 */
export const PRE_TOKENIZE_PATTERN =
  /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/**
 * The GPT-2 `bytes_to_unicode` table: byte b → a printable character. Printable Latin-1
 * bytes map to themselves; the 68 others (controls, space, NBSP, soft hyphen) map to
 * U+0100 onwards in byte order, so "Ġ" (U+0120) is the space byte.
 */
export const BYTE_TO_CHAR: readonly string[] = buildByteToChar();

/** The inverse of BYTE_TO_CHAR: UTF-16 code unit → byte, or -1. */
export const CHAR_TO_BYTE: Int16Array = buildCharToByte();

/** Returns the pre-tokens of `text` (which must already be well-formed, see toWellFormed). */
export function preTokenize(text: string): string[] {
  return text.match(PRE_TOKENIZE_PATTERN) ?? [];
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * Returns `text` with every lone surrogate replaced by U+FFFD, i.e. exactly what UTF-8
 * encoding would make of it. Doing this before pre-tokenizing keeps our splits equal to
 * tokenizers.js, whose regex classes a lone surrogate exactly like U+FFFD (a symbol).
 */
export function toWellFormed(text: string): string {
  LONE_SURROGATE.lastIndex = 0;
  return LONE_SURROGATE.test(text) ? text.replace(LONE_SURROGATE, "\uFFFD") : text;
}

/** Returns the byte-level string (one character per UTF-8 byte) of `bytes`. */
export function bytesToSymbols(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += BYTE_TO_CHAR[bytes[i]!];
  return s;
}

/** Returns the bytes of a byte-level string, or null if it has a non-byte character. */
export function symbolsToBytes(symbols: string): Uint8Array | null {
  const out = new Uint8Array(symbols.length);
  for (let i = 0; i < symbols.length; i++) {
    const code = symbols.charCodeAt(i);
    const b = code < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[code]! : -1;
    if (b < 0) return null;
    out[i] = b;
  }
  return out;
}

function buildByteToChar(): string[] {
  const table: string[] = new Array(256);
  const printable = (b: number) =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let next = 0x100;
  for (let b = 0; b < 256; b++) {
    table[b] = String.fromCharCode(printable(b) ? b : next++);
  }
  return table;
}

function buildCharToByte(): Int16Array {
  const table = new Int16Array(0x100 + 68).fill(-1);
  for (let b = 0; b < 256; b++) table[BYTE_TO_CHAR[b]!.charCodeAt(0)] = b;
  return table;
}
