/**
 * Reader and writer for the Hugging Face safetensors format, byte-compatible with the
 * reference Rust implementation (`safetensors::serialize`):
 *
 *   [u64 little-endian N][N bytes of UTF-8 JSON header, space-padded to a multiple of 8][data]
 *
 * The header maps each tensor name to `{"dtype", "shape", "data_offsets": [begin, end]}`
 * (offsets relative to the start of the data section) plus an optional `"__metadata__"`
 * object of string → string. Like the reference writer, tensors are ordered by descending
 * dtype alignment and then by name (byte order of the UTF-8 name), packed with no gaps, and
 * the header lists `__metadata__` first and the tensors in data order. Metadata keys, which
 * the reference keeps in hash order, are written sorted so output is deterministic.
 *
 * Plain data only: this file knows nothing about the Tensor class, and nothing about files
 * (it runs in a browser too); `./safetensors.ts` reads and writes them.
 */
import { decodeBf16, decodeF16, encodeF16 } from "./half-float.js";

export type StDtype = "F32" | "I32" | "F16" | "BF16" | "F64" | "I64" | "U8" | "I8" | "I16" | "BOOL";

/**
 * One tensor as read from a file. F16, BF16 and F64 are decoded to Float32Array; I64, I16
 * and I8 to Int32Array; U8 and BOOL stay Uint8Array. `dtype` always says what the file held.
 */
export interface StEntry {
  dtype: StDtype;
  shape: number[];
  data: Float32Array | Int32Array | Uint8Array;
}

/**
 * A tensor to write: F32 for a Float32Array and I32 for an Int32Array; with `half` a
 * Float32Array is stored as F16, rounded to nearest (encodeF16), at half the bytes.
 */
export interface StInput {
  shape: number[];
  data: Float32Array | Int32Array;
  half?: boolean;
}

export interface StFile {
  tensors: Record<string, StEntry>;
  metadata: Record<string, string>;
}

/** Bytes per element of each dtype we understand. */
const DTYPE_SIZE: Record<StDtype, number> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  I16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
};

/** Position in the reference `Dtype` enum, which is ordered by increasing alignment. */
const WRITE_ORDER: Record<WrittenDtype, number> = { F16: 7, I32: 9, F32: 11 };

type WrittenDtype = "F32" | "I32" | "F16";

/** The reference implementation refuses headers above 100 MB; so do we. */
const MAX_HEADER_BYTES = 100_000_000;

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const utf8 = new TextEncoder();

interface PlannedTensor {
  name: string;
  dtype: WrittenDtype;
  byteLength: number;
  input: StInput;
}

/** Returns the complete safetensors file for `tensors` (F32/I32/F16) and optional `metadata`. */
export function serializeSafetensors(
  tensors: Record<string, StInput>,
  metadata?: Record<string, string>,
): Uint8Array {
  const { header, plan, dataBytes } = prepare(tensors, metadata);
  const out = new Uint8Array(header.byteLength + dataBytes);
  let at = 0;
  for (const chunk of fileChunks(header, plan)) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

/**
 * Returns the chunks of the safetensors file for `tensors` (F32/I32) and optional `metadata`:
 * the header, then each tensor's bytes (views, not copies), so a writer can stream them.
 */
export function safetensorsChunks(
  tensors: Record<string, StInput>,
  metadata?: Record<string, string>,
): Iterable<Uint8Array> {
  const { header, plan } = prepare(tensors, metadata);
  return fileChunks(header, plan);
}

/**
 * Returns the tensors and metadata stored in `bytes`, validating the whole header.
 *
 * F32 and I32 data are views into `bytes` (no copy) when 4-byte aligned, which the padded
 * header guarantees for any buffer that starts aligned; otherwise they are copied.
 * Errors start with `source` (a file path, or "safetensors" for a bare buffer).
 */
export function parseSafetensors(bytes: Uint8Array, source = "safetensors"): StFile {
  if (!LITTLE_ENDIAN_HOST) throw new Error(`${source}: big-endian hosts are not supported`);
  const fail = (msg: string): never => {
    throw new Error(`${source}: ${msg}`);
  };
  if (bytes.byteLength < 8) {
    fail(`file is ${bytes.byteLength} bytes, shorter than the 8-byte header length`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(bytes.byteLength - 8)) {
    fail(`header length ${headerLength} runs past the end of the file (${bytes.byteLength} bytes)`);
  }
  const n = Number(headerLength);
  if (n > MAX_HEADER_BYTES) fail(`header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);

  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    return fail("header is not valid UTF-8");
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (err) {
    return fail(`header is not valid JSON: ${(err as Error).message}`);
  }
  if (!isPlainObject(header)) return fail("header must be a JSON object");

  const dataStart = 8 + n;
  const dataLength = bytes.byteLength - dataStart;
  const metadata: Record<string, string> = {};
  const infos: { name: string; dtype: StDtype; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === "__metadata__") {
      if (!isPlainObject(value)) fail(`field "__metadata__" must be an object of strings`);
      for (const [key, v] of Object.entries(value as object)) {
        if (typeof v !== "string") {
          fail(`field "__metadata__.${key}" must be a string, got ${describe(v)}`);
        }
        define(metadata, key, v);
      }
      continue;
    }
    infos.push({ name, ...readTensorInfo(name, value, fail) });
  }

  // Like the reference reader: tensors must tile the data section exactly, in offset order.
  infos.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  for (const info of infos) {
    const where = `tensor "${info.name}": field "data_offsets" [${info.begin}, ${info.end}]`;
    if (info.end > dataLength) {
      fail(`${where} runs past the end of the data section (${dataLength} bytes)`);
    }
    if (info.begin < covered) fail(`${where} overlaps the previous tensor (ends at ${covered})`);
    if (info.begin > covered) fail(`${where} leaves a gap after byte ${covered}`);
    covered = info.end;
  }
  if (covered !== dataLength) {
    fail(`tensors cover ${covered} bytes but the data section has ${dataLength}`);
  }

  const tensors: Record<string, StEntry> = {};
  for (const info of infos) {
    const raw = bytes.subarray(dataStart + info.begin, dataStart + info.end);
    const data = decodeData(info.dtype, raw, (msg) => fail(`tensor "${info.name}": ${msg}`));
    define(tensors, info.name, { dtype: info.dtype, shape: info.shape, data });
  }
  return { tensors, metadata };
}

/** Returns the validated dtype, shape and offsets of one header entry. */
function readTensorInfo(
  name: string,
  value: unknown,
  fail: (msg: string) => never,
): { dtype: StDtype; shape: number[]; begin: number; end: number } {
  const at = `tensor "${name}"`;
  if (!isPlainObject(value)) return fail(`${at}: header entry must be an object`);
  const entry = value as Record<string, unknown>;
  const { dtype, shape, data_offsets: offsets } = entry;
  if (dtype === undefined) fail(`${at}: missing field "dtype"`);
  if (typeof dtype !== "string" || !Object.hasOwn(DTYPE_SIZE, dtype)) {
    fail(
      `${at}: field "dtype" is ${describe(dtype)}, expected one of ${Object.keys(DTYPE_SIZE).join(", ")}`,
    );
  }
  if (shape === undefined) fail(`${at}: missing field "shape"`);
  if (!Array.isArray(shape) || !shape.every(isCount)) {
    fail(`${at}: field "shape" must be an array of non-negative integers`);
  }
  if (offsets === undefined) fail(`${at}: missing field "data_offsets"`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
    fail(`${at}: field "data_offsets" must be [begin, end] with non-negative integers`);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) fail(`${at}: field "data_offsets" [${begin}, ${end}] ends before it begins`);
  const t = dtype as StDtype;
  const dims = shape as number[];
  const expected = dims.reduce((a, b) => a * b, 1) * DTYPE_SIZE[t];
  if (end - begin !== expected) {
    fail(
      `${at}: field "data_offsets" [${begin}, ${end}] spans ${end - begin} bytes but shape ` +
        `[${dims.join(", ")}] of ${t} needs ${expected}`,
    );
  }
  return { dtype: t, shape: dims.slice(), begin, end };
}

/** Returns the typed array for one tensor's raw little-endian bytes. */
/**
 * Returns a fresh buffer holding raw's bytes. (Not raw.slice(): when raw is a Node Buffer read
 * from a file, slice() returns a view of the whole file's memory, not a copy.)
 */
function copied(raw: Uint8Array): ArrayBuffer {
  return new Uint8Array(raw).buffer;
}

function decodeData(
  dtype: StDtype,
  raw: Uint8Array,
  fail: (msg: string) => never,
): Float32Array | Int32Array | Uint8Array {
  switch (dtype) {
    case "F32":
      return aligned(raw, 4)
        ? new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4)
        : new Float32Array(copied(raw));
    case "I32":
      return aligned(raw, 4)
        ? new Int32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4)
        : new Int32Array(copied(raw));
    case "F16":
      return decodeF16(raw);
    case "BF16":
      return decodeBf16(raw);
    case "F64":
      return Float32Array.from(new Float64Array(copied(raw)));
    case "I64": {
      const wide = new BigInt64Array(copied(raw));
      const out = new Int32Array(wide.length);
      for (let i = 0; i < wide.length; i++) {
        const v = wide[i]!;
        if (v < -2147483648n || v > 2147483647n) {
          fail(`I64 element ${i} (${v}) does not fit in a 32-bit integer`);
        }
        out[i] = Number(v);
      }
      return out;
    }
    case "I16":
      return Int32Array.from(new Int16Array(copied(raw)));
    case "I8":
      return Int32Array.from(new Int8Array(raw.buffer, raw.byteOffset, raw.byteLength));
    case "U8":
    case "BOOL":
      return raw;
  }
}

/** Returns the padded header bytes (with length prefix), the write order and data size. */
function prepare(
  tensors: Record<string, StInput>,
  metadata: Record<string, string> | undefined,
): { header: Uint8Array; plan: PlannedTensor[]; dataBytes: number } {
  const plan: PlannedTensor[] = [];
  for (const name of Object.keys(tensors)) {
    const input = tensors[name]!;
    const at = `safetensors: tensor "${name}"`;
    if (name === "__metadata__") throw new Error(`${at}: the name is reserved for metadata`);
    if (!isWellFormed(name)) throw new Error(`${at}: the name contains a lone surrogate`);
    const { shape, data } = input;
    if (!Array.isArray(shape) || !shape.every(isCount)) {
      throw new Error(`${at}: shape must be an array of non-negative integers`);
    }
    let dtype: WrittenDtype;
    if (data instanceof Float32Array) dtype = input.half ? "F16" : "F32";
    else if (data instanceof Int32Array && !input.half) dtype = "I32";
    else
      throw new Error(
        `${at}: data must be a Float32Array or Int32Array (half: a Float32Array only)`,
      );
    const numel = shape.reduce((a, b) => a * b, 1);
    if (numel !== data.length) {
      throw new Error(
        `${at}: shape [${shape.join(", ")}] has ${numel} elements but data has ${data.length}`,
      );
    }
    plan.push({
      name,
      dtype,
      byteLength: dtype === "F16" ? 2 * data.length : data.byteLength,
      input,
    });
  }
  plan.sort((a, b) => WRITE_ORDER[b.dtype] - WRITE_ORDER[a.dtype] || compareUtf8(a.name, b.name));

  // Built by hand rather than with JSON.stringify on an object, because JavaScript objects
  // move integer-like keys ("0", "12") to the front and would break the reference order.
  const parts: string[] = [];
  if (metadata !== undefined) {
    const entries = Object.keys(metadata)
      .sort(compareUtf8)
      .map((key) => {
        const value = metadata[key];
        if (typeof value !== "string" || !isWellFormed(key) || !isWellFormed(value)) {
          throw new Error(`safetensors: metadata "${key}" must be a well-formed string`);
        }
        return `${JSON.stringify(key)}:${JSON.stringify(value)}`;
      });
    parts.push(`"__metadata__":{${entries.join(",")}}`);
  }
  let offset = 0;
  for (const t of plan) {
    const shape = t.input.shape.join(",");
    const end = offset + t.byteLength;
    parts.push(
      `${JSON.stringify(t.name)}:{"dtype":"${t.dtype}","shape":[${shape}],"data_offsets":[${offset},${end}]}`,
    );
    offset = end;
  }
  const json = utf8.encode(`{${parts.join(",")}}`);
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const header = new Uint8Array(8 + padded).fill(0x20, 8 + json.byteLength);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(json, 8);
  return { header, plan, dataBytes: offset };
}

/** Yields the header and then each tensor's bytes, re-checking sizes against the plan. */
function* fileChunks(header: Uint8Array, plan: PlannedTensor[]): Generator<Uint8Array> {
  if (!LITTLE_ENDIAN_HOST) throw new Error("safetensors: big-endian hosts are not supported");
  yield header;
  for (const t of plan) {
    // Read `data` again here: streaming writers may produce it lazily, and a tensor that was
    // resized since the header was built must not corrupt the file.
    const data = t.dtype === "F16" ? encodeF16(t.input.data as Float32Array) : t.input.data;
    if (data.byteLength !== t.byteLength) {
      throw new Error(
        `safetensors: tensor "${t.name}": data changed size during writing ` +
          `(${t.byteLength} → ${data.byteLength} bytes)`,
      );
    }
    yield new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }
}

function aligned(raw: Uint8Array, bytes: number): boolean {
  return raw.byteOffset % bytes === 0;
}

function isCount(x: unknown): x is number {
  return typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** Returns whether `s` has no lone surrogates (and so survives UTF-8 unchanged). */
function isWellFormed(s: string): boolean {
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
}

/** Returns the sign of comparing `a` and `b` by UTF-8 bytes, which is code-point order. */
function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x - y;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}

/** Sets a key as an own property, so names like "__proto__" cannot touch the prototype. */
function define<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function describe(x: unknown): string {
  if (x === undefined) return "missing";
  return `${JSON.stringify(x) ?? String(x)} (${Array.isArray(x) ? "array" : typeof x})`;
}
