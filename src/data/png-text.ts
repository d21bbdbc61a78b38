/**
 * Text metadata in PNG files (tEXt chunks, iTXt for text outside Latin-1), written and read
 * here because sharp reads PNG comments but cannot write them.
 */

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** CRC-32 (ISO 3309, the polynomial PNG uses) lookup table, built once. */
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** Returns the CRC-32 of `bytes`, as PNG computes it over a chunk's type and data. */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Returns true if every character of `s` is Latin-1 (what tEXt may hold). */
function isLatin1(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0xff) return false;
  return true;
}

/** Returns the Latin-1 string of bytes (TextDecoder's "latin1" is windows-1252, not Latin-1). */
function latin1(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]!);
  return s;
}

/** Returns the bytes of one chunk: length, type, data and CRC over type and data. */
function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** Returns the tEXt (Latin-1) or iTXt (UTF-8) chunk holding keyword = text. */
function textChunk(keyword: string, text: string): Uint8Array {
  // The PNG spec: 1–79 Latin-1 characters, no leading, trailing or double spaces.
  if (!/^[\x20-\x7e\xa1-\xff]{1,79}$/.test(keyword) || /^ | $| {2}/.test(keyword))
    throw new Error(`PNG text: keyword "${keyword}" must be 1–79 printable Latin-1 characters`);
  const key = Uint8Array.from(keyword, (ch) => ch.charCodeAt(0));
  if (isLatin1(text)) {
    const value = Uint8Array.from(text, (ch) => ch.charCodeAt(0));
    const data = new Uint8Array(key.length + 1 + value.length);
    data.set(key);
    data.set(value, key.length + 1);
    return chunk("tEXt", data);
  }
  // iTXt: keyword, 0, compression flag 0, method 0, empty language tag 0, empty
  // translated keyword 0, then the UTF-8 text.
  const value = new TextEncoder().encode(text);
  const data = new Uint8Array(key.length + 5 + value.length);
  data.set(key);
  data.set(value, key.length + 5);
  return chunk("iTXt", data);
}

/** Returns nothing; throws unless `png` starts with the PNG signature (`what` names it). */
function checkSignature(png: Uint8Array, what: string): void {
  if (png.length < 8 || SIGNATURE.some((b, i) => png[i] !== b))
    throw new Error(`${what}: not a PNG file (no PNG signature)`);
}

/**
 * Returns a copy of the PNG `png` with one text chunk per entry of `entries` inserted before
 * its first IDAT chunk (so readers that stop at the image data still see them).
 */
export function addPngText(png: Uint8Array, entries: Record<string, string>): Uint8Array {
  checkSignature(png, "addPngText");
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  let at = 8;
  while (at + 8 <= png.length) {
    const type = String.fromCharCode(...png.subarray(at + 4, at + 8));
    if (type === "IDAT") break;
    at += 12 + view.getUint32(at);
  }
  if (at + 8 > png.length) throw new Error("addPngText: the PNG has no IDAT chunk");
  const chunks = Object.entries(entries).map(([k, v]) => textChunk(k, v));
  const size = chunks.reduce((n, c) => n + c.length, 0);
  const out = new Uint8Array(png.length + size);
  out.set(png.subarray(0, at));
  let w = at;
  for (const c of chunks) {
    out.set(c, w);
    w += c.length;
  }
  out.set(png.subarray(at), w);
  return out;
}

/**
 * Returns the uncompressed text chunks (tEXt and iTXt) of a PNG as keyword → text, in file
 * order; `what` names the file in errors. Compressed chunks (zTXt, compressed iTXt) are skipped.
 */
export function readPngText(png: Uint8Array, what = "PNG"): Record<string, string> {
  checkSignature(png, what);
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const out: Record<string, string> = {};
  let at = 8;
  while (at + 12 <= png.length) {
    const len = view.getUint32(at);
    const type = String.fromCharCode(...png.subarray(at + 4, at + 8));
    if (at + 12 + len > png.length) throw new Error(`${what}: chunk ${type} runs past the end`);
    const data = png.subarray(at + 8, at + 8 + len);
    const nul = data.indexOf(0);
    if ((type === "tEXt" || type === "iTXt") && nul > 0) {
      const key = latin1(data.subarray(0, nul));
      if (type === "tEXt") out[key] = latin1(data.subarray(nul + 1));
      else if (data[nul + 1] === 0) {
        // Skip the language tag and translated keyword (two NUL-terminated fields).
        const lang = data.indexOf(0, nul + 3);
        const translated = lang < 0 ? -1 : data.indexOf(0, lang + 1);
        if (translated >= 0) out[key] = new TextDecoder().decode(data.subarray(translated + 1));
      }
    }
    if (type === "IEND") break;
    at += 12 + len;
  }
  return out;
}
