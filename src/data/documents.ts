/**
 * Interleaved documents: ordered text and image parts, stored as JSONL (one document per
 * line) with images as PNG/JPEG files whose paths are relative to the JSONL file.
 *
 * On-disk line: {"parts": [{"text": "a cat"}, {"image": "img/cat.png"}], "labels": {...}}
 * Rules checked at load time (each error names file, 1-based line and part index):
 * - a line is a UTF-8 JSON object with only the keys `parts` and optional `labels`;
 * - `parts` is a non-empty array; each part is exactly {"text": string} or {"image": string};
 * - text may not be empty: an empty part carries nothing and usually means a caption went
 *   missing upstream (whitespace-only text is kept, it is content to a tokenizer);
 * - `labels` maps names to strings or finite numbers;
 * - blank lines are ignored (they hold no document, e.g. a trailing newline).
 */
import { readFile } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { type Image, readImage, writeFileAtomic, writePng } from "./image.js";

export type Part = { text: string } | { image: Image; source?: string };
export type Labels = Record<string, string | number>;

export interface Document {
  parts: Part[];
  labels?: Labels;
}

export interface LoadDocumentsOptions {
  /** Every image is resized (centre crop) to imageSize×imageSize. */
  imageSize: number;
  /** Channels every image must have; colour images are refused when 1 is required. */
  channels: 1 | 3;
  /** "throw" stops at the first bad document; "skip" leaves it out and reports it. */
  onError: "throw" | "skip";
}

/** One document left out by `onError: "skip"`; `part` is the 0-based part index, if any. */
export interface SkippedDocument {
  line: number;
  part?: number;
  reason: string;
}

export interface LoadedDocuments {
  documents: Document[];
  skipped: SkippedDocument[];
}

/** A document that failed validation; its message names file, line and part. */
export class DocumentError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly part: number | undefined,
    readonly reason: string,
  ) {
    super(`${file}:${line}${part === undefined ? "" : `: part ${part}`}: ${reason}`);
    this.name = "DocumentError";
  }
}

/** A document whose JSON passed validation and whose images are still paths. */
interface ParsedDocument {
  line: number;
  parts: Array<{ text: string } | { imagePath: string }>;
  labels?: Labels;
}

/** Images decoded at once while loading; enough to keep libuv's threads busy. */
const IMAGE_CONCURRENCY = 8;

/**
 * Returns the documents in the JSONL file at `path` with their images decoded, plus the list
 * of documents left out (always empty with `onError: "throw"`, which throws instead).
 */
export async function loadDocuments(
  path: string,
  options: LoadDocumentsOptions,
): Promise<LoadedDocuments> {
  const { imageSize, channels, onError } = options;
  if (!Number.isInteger(imageSize) || imageSize < 1) {
    throw new Error(`loadDocuments: imageSize must be a positive integer, got ${imageSize}`);
  }
  if (channels !== 1 && channels !== 3) {
    throw new Error(`loadDocuments: channels must be 1 or 3, got ${String(channels)}`);
  }
  if (onError !== "throw" && onError !== "skip") {
    throw new Error(`loadDocuments: onError must be "throw" or "skip", got ${String(onError)}`);
  }
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(
      `${path}: ${code === "ENOENT" ? "file not found" : `cannot read (${code ?? String(err)})`}`,
    );
  }
  const skipped: SkippedDocument[] = [];
  const fail = (line: number, part: number | undefined, reason: string) => {
    if (onError === "throw") throw new DocumentError(path, line, part, reason);
    skipped.push(part === undefined ? { line, reason } : { line, part, reason });
  };

  const parsed: ParsedDocument[] = [];
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let lineNo = 0;
  for (const lineBytes of splitLines(bytes)) {
    lineNo++;
    let text: string;
    try {
      text = decoder.decode(lineBytes);
    } catch {
      fail(lineNo, undefined, "not valid UTF-8");
      continue;
    }
    if (text.trim() === "") continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      fail(lineNo, undefined, `invalid JSON (${(err as Error).message})`);
      continue;
    }
    const result = parseDocument(value);
    if (typeof result === "object" && "reason" in result) {
      fail(lineNo, result.part, result.reason);
      continue;
    }
    parsed.push({ line: lineNo, ...result });
  }

  // Decode images with bounded concurrency; a path used twice is decoded once.
  const baseDir = dirname(resolve(path));
  const cache = new Map<string, Promise<Image>>();
  const load = (imagePath: string) => {
    const full = resolve(baseDir, imagePath);
    let pending = cache.get(full);
    if (!pending) {
      pending = readImage(full, { channels, size: imageSize });
      pending.catch(() => {}); // observed below; avoid unhandled-rejection noise meanwhile
      cache.set(full, pending);
    }
    return pending;
  };
  const built: Array<Document | undefined> = new Array(parsed.length);
  const errors: Array<DocumentError | undefined> = new Array(parsed.length);
  let next = 0;
  const worker = async () => {
    while (next < parsed.length) {
      const i = next++;
      const doc = parsed[i]!;
      const parts: Part[] = [];
      for (let k = 0; k < doc.parts.length; k++) {
        const part = doc.parts[k]!;
        if ("text" in part) {
          parts.push({ text: part.text });
          continue;
        }
        try {
          parts.push({ image: await load(part.imagePath), source: part.imagePath });
        } catch (err) {
          errors[i] = new DocumentError(path, doc.line, k, (err as Error).message);
          break;
        }
      }
      if (!errors[i]) built[i] = doc.labels ? { parts, labels: doc.labels } : { parts };
    }
  };
  await Promise.all(Array.from({ length: IMAGE_CONCURRENCY }, worker));

  const documents: Document[] = [];
  for (let i = 0; i < parsed.length; i++) {
    const err = errors[i];
    if (err) fail(err.line, err.part, err.reason);
    else documents.push(built[i]!);
  }
  skipped.sort((a, b) => a.line - b.line);
  return { documents, skipped };
}

/** Returns the lines of the file as byte ranges (split on \n, a trailing \r dropped). */
function* splitLines(bytes: Uint8Array): Generator<Uint8Array> {
  let start = 0;
  while (start <= bytes.length) {
    let end = bytes.indexOf(0x0a, start);
    if (end < 0) end = bytes.length;
    const stop = end > start && bytes[end - 1] === 0x0d ? end - 1 : end;
    if (!(end === bytes.length && start === end)) yield bytes.subarray(start, stop);
    start = end + 1;
  }
}

/** Returns the document's validated fields, or the reason (and part index) it is invalid. */
function parseDocument(
  value: unknown,
): Omit<ParsedDocument, "line"> | { part?: number; reason: string } {
  if (!isPlainObject(value)) return { reason: `expected a JSON object, got ${typeName(value)}` };
  for (const key of Object.keys(value)) {
    if (key !== "parts" && key !== "labels") {
      return { reason: `unknown key '${key}' (a document has 'parts' and optional 'labels')` };
    }
  }
  const { parts, labels } = value;
  if (parts === undefined) return { reason: "missing 'parts'" };
  if (!Array.isArray(parts)) return { reason: `'parts' must be an array, got ${typeName(parts)}` };
  if (parts.length === 0) return { reason: "'parts' is empty" };
  const out: ParsedDocument["parts"] = [];
  for (let k = 0; k < parts.length; k++) {
    const part: unknown = parts[k];
    const bad = (reason: string) => ({ part: k, reason });
    if (!isPlainObject(part)) return bad(`expected an object, got ${typeName(part)}`);
    const keys = Object.keys(part);
    if (keys.length !== 1 || (keys[0] !== "text" && keys[0] !== "image")) {
      return bad(
        `a part must have exactly one key, 'text' or 'image'; got ${keys.length ? keys.map((k) => `'${k}'`).join(", ") : "none"}`,
      );
    }
    if (keys[0] === "text") {
      if (typeof part.text !== "string")
        return bad(`'text' must be a string, got ${typeName(part.text)}`);
      if (part.text === "") return bad("'text' is empty");
      out.push({ text: part.text });
    } else {
      if (typeof part.image !== "string") {
        return bad(`'image' must be a path string, got ${typeName(part.image)}`);
      }
      if (part.image === "") return bad("'image' path is empty");
      out.push({ imagePath: part.image });
    }
  }
  if (labels === undefined) return { parts: out };
  if (!isPlainObject(labels))
    return { reason: `'labels' must be an object, got ${typeName(labels)}` };
  for (const [key, v] of Object.entries(labels)) {
    if (typeof v !== "string" && !(typeof v === "number" && Number.isFinite(v))) {
      return { reason: `label '${key}' must be a string or finite number, got ${typeName(v)}` };
    }
  }
  return { parts: out, labels: labels as Labels };
}

/**
 * Returns once `docs` are written to the JSONL file at `path`, each image part saved as a
 * PNG in `imageDir` (created if needed) and referenced by a path relative to the JSONL file.
 */
export async function writeDocuments(
  path: string,
  docs: readonly Document[],
  imageDir: string,
): Promise<void> {
  const baseDir = dirname(resolve(path));
  const lines: string[] = [];
  for (let d = 0; d < docs.length; d++) {
    const doc = docs[d]!;
    if (!Array.isArray(doc.parts) || doc.parts.length === 0) {
      throw new Error(`writeDocuments: document ${d} has no parts`);
    }
    const parts: Array<{ text: string } | { image: string }> = [];
    for (let k = 0; k < doc.parts.length; k++) {
      const part = doc.parts[k]!;
      if ("text" in part) {
        parts.push({ text: part.text });
        continue;
      }
      const file = join(resolve(imageDir), `doc${d}-part${k}.png`);
      await writePng(file, part.image);
      // Forward slashes keep the JSONL portable between operating systems.
      parts.push({ image: relative(baseDir, file).split("\\").join("/") });
    }
    lines.push(JSON.stringify(doc.labels ? { parts, labels: doc.labels } : { parts }));
  }
  await writeFileAtomic(path, lines.length ? `${lines.join("\n")}\n` : "");
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (v === undefined) return "nothing";
  if (Array.isArray(v)) return "an array";
  return typeof v === "object" ? "an object" : `a ${typeof v}`;
}
