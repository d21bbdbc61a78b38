import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { listTempFiles } from "../../src/tensor/atomic-write.js";
import { decodeF16, encodeF16 } from "../../src/tensor/half-float.js";
import { Rng } from "../../src/tensor/rng.js";
import {
  parseSafetensors,
  readSafetensorsFile,
  type StInput,
  serializeSafetensors,
  writeSafetensorsFile,
} from "../../src/tensor/safetensors.js";

const dir = mkdtempSync(join(tmpdir(), "safetensors-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const ascii = (s: string) => Array.from(s, (c) => c.charCodeAt(0));

/** Returns a file made of `header` (padded like the spec says) and raw data bytes. */
function handMade(header: string, data: number[] = [], pad = true): Uint8Array {
  const json = new TextEncoder().encode(header);
  const n = pad ? Math.ceil(json.length / 8) * 8 : json.length;
  const out = new Uint8Array(8 + n + data.length).fill(0x20, 8, 8 + n);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  out.set(json, 8);
  out.set(data, 8 + n);
  return out;
}

function bytesOf(a: Float32Array | Int32Array | Uint8Array): number[] {
  return [...new Uint8Array(a.buffer, a.byteOffset, a.byteLength)];
}

describe("serializeSafetensors", () => {
  test("writes the reference implementation's own test vector byte for byte", () => {
    // From safetensors' Rust test_serialization: "attn.0", F32, shape [1,2,3], values 0..5.
    const out = serializeSafetensors({
      "attn.0": { shape: [1, 2, 3], data: Float32Array.from([0, 1, 2, 3, 4, 5]) },
    });
    // biome-ignore format: one row per part of the file
    const expected = [
      64, 0, 0, 0, 0, 0, 0, 0,
      ...ascii('{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}'),
      0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64,
    ];
    assert.deepEqual([...out], expected);
  });

  test("writes metadata first, F32 before I32, names sorted, header space-padded to 8", () => {
    const out = serializeSafetensors(
      {
        b: { shape: [2], data: Int32Array.from([1, -1]) },
        c: { shape: [0], data: new Float32Array(0) },
        a: { shape: [], data: Float32Array.from([1.5]) },
      },
      { format: "pt" },
    );
    const header =
      '{"__metadata__":{"format":"pt"},' +
      '"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},' +
      '"c":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},' +
      '"b":{"dtype":"I32","shape":[2],"data_offsets":[4,12]}}';
    assert.equal(header.length, 191); // so one space of padding makes 192
    // biome-ignore format: one row per part of the file
    const expected = [
      192, 0, 0, 0, 0, 0, 0, 0,
      ...ascii(header),
      0x20,
      0x00, 0x00, 0xc0, 0x3f, // 1.5f
      0x01, 0x00, 0x00, 0x00, // 1
      0xff, 0xff, 0xff, 0xff, // -1
    ];
    assert.deepEqual([...out], expected);
  });

  test("writes an empty file as {} padded to 8 bytes, like the reference", () => {
    assert.deepEqual(
      [...serializeSafetensors({})],
      [8, 0, 0, 0, 0, 0, 0, 0, 123, 125, ...ascii("      ")],
    );
  });

  test("orders names by UTF-8 bytes and keeps integer-like names in that order", () => {
    const t = { shape: [1], data: new Float32Array(1) };
    const out = serializeSafetensors({ "😀": t, "\uE000": t, "10": t, "9": t, b: t });
    const n = Number(new DataView(out.buffer).getBigUint64(0, true));
    const names = [
      ...new TextDecoder().decode(out.subarray(8, 8 + n)).matchAll(/"([^"]+)":\{"dtype/g),
    ];
    assert.deepEqual(
      names.map((m) => m[1]),
      ["10", "9", "b", "\uE000", "😀"],
    );
  });

  test("rejects inputs it cannot represent", () => {
    const cases: [Record<string, StInput>, RegExp][] = [
      [
        { x: { shape: [2, 2], data: new Float32Array(3) } },
        /tensor "x": shape \[2, 2\] has 4 elements but data has 3/,
      ],
      [{ x: { shape: [-1], data: new Float32Array(0) } }, /tensor "x": shape must be/],
      [{ __metadata__: { shape: [0], data: new Float32Array(0) } }, /reserved/],
      [
        { x: { shape: [1], data: new Float64Array(1) as unknown as Float32Array } },
        /Float32Array or Int32Array/,
      ],
      [{ "a\uD800": { shape: [0], data: new Float32Array(0) } }, /lone surrogate/],
    ];
    for (const [input, message] of cases) assert.throws(() => serializeSafetensors(input), message);
    assert.throws(
      () => serializeSafetensors({}, { k: 5 as unknown as string }),
      /metadata "k" must be a well-formed string/,
    );
  });
});

describe("parseSafetensors", () => {
  test("round-trips scalars, empty tensors, special floats, integers and metadata", () => {
    const f = Float32Array.from([1, -0, Number.NaN, Number.POSITIVE_INFINITY, -3.25e-39, 7]);
    const tensors: Record<string, StInput> = {
      "layer.0.weight": { shape: [2, 3], data: f },
      scalar: { shape: [], data: Float32Array.from([42]) },
      empty: { shape: [0], data: new Float32Array(0) },
      "empty.3d": { shape: [2, 0, 3], data: new Int32Array(0) },
      ids: { shape: [4], data: Int32Array.from([0, -1, 2147483647, -2147483648]) },
      "0": { shape: [1], data: Int32Array.from([5]) },
    };
    const metadata = { format: "pt", "note ünïcode": '✓ "quoted"\n' };
    const back = parseSafetensors(serializeSafetensors(tensors, metadata));
    assert.deepEqual(back.metadata, metadata);
    assert.deepEqual(Object.keys(back.tensors).sort(), Object.keys(tensors).sort());
    for (const [name, t] of Object.entries(tensors)) {
      const got = back.tensors[name]!;
      assert.equal(got.dtype, t.data instanceof Float32Array ? "F32" : "I32", name);
      assert.deepEqual(got.shape, t.shape, name);
      assert.equal(got.data.constructor, t.data.constructor, name);
      assert.deepEqual(bytesOf(got.data), bytesOf(t.data), name); // bit-exact, NaN and -0 too
    }
  });

  test("returns F32 views into the input when aligned and copies when not", () => {
    const bytes = serializeSafetensors({ w: { shape: [2], data: Float32Array.from([1, 2]) } });
    const aligned = parseSafetensors(bytes).tensors["w"]!.data;
    assert.equal(aligned.buffer, bytes.buffer);
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    const copy = parseSafetensors(shifted.subarray(1)).tensors["w"]!.data;
    assert.notEqual(copy.buffer, shifted.buffer);
    assert.deepEqual([...copy], [1, 2]);
  });

  test("decodes F16 and BF16 bit patterns exactly (dtype kept as read)", () => {
    const f16 = [0x3c00, 0xc100, 0x0001, 0x03ff, 0x0400, 0x7bff, 0x7c00, 0xfc00, 0x7e00, 0x8000];
    const bf16 = [0x3f80, 0xc020, 0x0001, 0x0080, 0x7f7f, 0x7f80, 0xff80, 0x7fc0, 0x8000];
    const le = (words: number[]) => words.flatMap((w) => [w & 0xff, w >> 8]);
    const file = handMade(
      `{"h":{"dtype":"F16","shape":[${f16.length}],"data_offsets":[0,${2 * f16.length}]},` +
        `"b":{"dtype":"BF16","shape":[${bf16.length}],"data_offsets":[${2 * f16.length},${2 * (f16.length + bf16.length)}]}}`,
      [...le(f16), ...le(bf16)],
    );
    const { tensors } = parseSafetensors(file);
    assert.equal(tensors["h"]!.dtype, "F16");
    assert.equal(tensors["b"]!.dtype, "BF16");
    assert.ok(tensors["h"]!.data instanceof Float32Array);
    assert.deepEqual(
      [...tensors["h"]!.data],
      [1, -2.5, 2 ** -24, 1023 * 2 ** -24, 2 ** -14, 65504, Infinity, -Infinity, Number.NaN, -0],
    );
    assert.deepEqual(
      [...tensors["b"]!.data],
      [1, -2.5, 2 ** -133, 2 ** -126, 255 * 2 ** 120, Infinity, -Infinity, Number.NaN, -0],
    );
  });

  test("widens the other integer and float dtypes", () => {
    const i64 = new BigInt64Array([-5n, 2147483647n]);
    const f64 = Float64Array.from([0.5, -1e300]);
    const file = handMade(
      '{"l":{"dtype":"I64","shape":[2],"data_offsets":[0,16]},' +
        '"d":{"dtype":"F64","shape":[2],"data_offsets":[16,32]},' +
        '"s":{"dtype":"I16","shape":[2],"data_offsets":[32,36]},' +
        '"c":{"dtype":"I8","shape":[2],"data_offsets":[36,38]},' +
        '"u":{"dtype":"U8","shape":[1],"data_offsets":[38,39]},' +
        '"t":{"dtype":"BOOL","shape":[1],"data_offsets":[39,40]}}',
      [
        ...new Uint8Array(i64.buffer),
        ...new Uint8Array(f64.buffer),
        ...[0xff, 0xff, 0x00, 0x80], // I16: -1, -32768
        ...[0xfe, 7], // I8: -2, 7
        200, // U8
        1, // BOOL
      ],
    );
    const { tensors } = parseSafetensors(file);
    assert.deepEqual([...tensors["l"]!.data], [-5, 2147483647]);
    assert.ok(tensors["l"]!.data instanceof Int32Array);
    assert.deepEqual([...tensors["d"]!.data], [0.5, -Infinity]); // rounded to float32
    assert.deepEqual([...tensors["s"]!.data], [-1, -32768]);
    assert.deepEqual([...tensors["c"]!.data], [-2, 7]);
    assert.deepEqual([...tensors["u"]!.data], [200]);
    assert.deepEqual([...tensors["t"]!.data], [1]);
  });

  test("names the source and the field in every validation error", () => {
    const src = "/models/bad.safetensors";
    const entry = (fields: string) => `{"w":{${fields}}}`;
    const ok = '"dtype":"F32","shape":[2]';
    const cases: [Uint8Array, RegExp][] = [
      [new Uint8Array(5), /shorter than the 8-byte header length/],
      [handMade("{}", [], false).subarray(0, 9), /header length 2 runs past the end of the file/],
      [handMade('{"w":'), /header is not valid JSON/],
      [handMade("[1,2]"), /header must be a JSON object/],
      [
        handMade(entry('"shape":[2],"data_offsets":[0,8]'), new Array(8).fill(0)),
        /tensor "w": missing field "dtype"/,
      ],
      [
        handMade(entry('"dtype":"F32","data_offsets":[0,8]'), new Array(8).fill(0)),
        /tensor "w": missing field "shape"/,
      ],
      [handMade(entry(ok), new Array(8).fill(0)), /tensor "w": missing field "data_offsets"/],
      [
        handMade(entry('"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]'), [0, 0]),
        /tensor "w": field "dtype" is "F8_E4M3"/,
      ],
      [
        handMade(entry('"dtype":"F32","shape":[-2],"data_offsets":[0,8]')),
        /tensor "w": field "shape" must be/,
      ],
      [
        handMade(entry('"dtype":"F32","shape":[2.5],"data_offsets":[0,8]')),
        /tensor "w": field "shape" must be/,
      ],
      [
        handMade(entry(`${ok},"data_offsets":[0]`)),
        /tensor "w": field "data_offsets" must be \[begin, end\]/,
      ],
      [handMade(entry(`${ok},"data_offsets":[8,0]`)), /ends before it begins/],
      [
        handMade(entry(`${ok},"data_offsets":[0,12]`), new Array(12).fill(0)),
        /spans 12 bytes but shape \[2\] of F32 needs 8/,
      ],
      [
        handMade(entry(`${ok},"data_offsets":[0,8]`), new Array(4).fill(0)),
        /runs past the end of the data section \(4 bytes\)/,
      ],
      [
        handMade(entry(`${ok},"data_offsets":[0,8]`), new Array(12).fill(0)),
        /tensors cover 8 bytes but the data section has 12/,
      ],
      [
        handMade(
          `{"a":{${ok},"data_offsets":[0,8]},"b":{${ok},"data_offsets":[4,12]}}`,
          new Array(12).fill(0),
        ),
        /tensor "b": field "data_offsets" \[4, 12\] overlaps/,
      ],
      [
        handMade(
          `{"a":{${ok},"data_offsets":[0,8]},"b":{${ok},"data_offsets":[12,20]}}`,
          new Array(20).fill(0),
        ),
        /tensor "b": field "data_offsets" \[12, 20\] leaves a gap/,
      ],
      [handMade('{"__metadata__":{"epoch":3}}'), /field "__metadata__.epoch" must be a string/],
      [handMade('{"__metadata__":["x"]}'), /field "__metadata__" must be an object/],
      [
        handMade(entry('"dtype":"I64","shape":[1],"data_offsets":[0,8]'), [0, 0, 0, 0, 1, 0, 0, 0]),
        /tensor "w": I64 element 0/,
      ],
      [handMade('{"w":5}'), /tensor "w": header entry must be an object/],
    ];
    for (const [bytes, message] of cases) {
      assert.throws(
        () => parseSafetensors(bytes, src),
        (err: Error) => err.message.startsWith(`${src}: `) && message.test(err.message),
        `expected ${message}`,
      );
    }
    const badUtf8 = handMade("{}");
    badUtf8[8] = 0xff;
    assert.throws(
      () => parseSafetensors(badUtf8, src),
      /bad\.safetensors: header is not valid UTF-8/,
    );
  });
});

describe("safetensors files", () => {
  const weights = (v: number): Record<string, StInput> => ({
    w: { shape: [2, 2], data: Float32Array.from([v, v + 1, v + 2, v + 3]) },
    step: { shape: [], data: Int32Array.from([v]) },
  });

  test("write then read returns the same tensors and metadata", () => {
    const path = join(dir, "model.safetensors");
    writeSafetensorsFile(path, weights(1), { step: "1" });
    const back = readSafetensorsFile(path);
    assert.deepEqual([...back.tensors["w"]!.data], [1, 2, 3, 4]);
    assert.deepEqual(back.metadata, { step: "1" });
    assert.deepEqual([...readFileSync(path)], [...serializeSafetensors(weights(1), { step: "1" })]);
    assert.deepEqual(listTempFiles(path), []);
  });

  test("reading a missing file names the path", () => {
    const path = join(dir, "missing.safetensors");
    assert.throws(() => readSafetensorsFile(path), new RegExp(`^Error: ${path}: cannot read`));
  });

  test("a tensor failing mid-write leaves the old file intact and no temporary file", () => {
    const path = join(dir, "atomic.safetensors");
    writeSafetensorsFile(path, weights(1));
    const before = readFileSync(path);
    // Its data is readable while the header is planned and throws when the bytes are
    // streamed, i.e. after the temporary file has been created and partly written.
    let reads = 0;
    const flaky = {
      shape: [1],
      get data(): Float32Array {
        if (++reads > 1) throw new Error("device lost");
        return new Float32Array(1);
      },
    };
    assert.throws(
      () => writeSafetensorsFile(path, { ...weights(2), zzz: flaky }),
      /atomic\.safetensors: write failed: device lost/,
    );
    assert.deepEqual(readFileSync(path), before);
    assert.deepEqual(listTempFiles(path), []);
  });

  test("a tensor resized during writing is caught and leaves the old file intact", () => {
    const path = join(dir, "resized.safetensors");
    writeSafetensorsFile(path, weights(1));
    const before = readFileSync(path);
    let reads = 0;
    const growing = {
      shape: [1],
      get data(): Float32Array {
        return new Float32Array(++reads);
      },
    };
    assert.throws(() => writeSafetensorsFile(path, { g: growing }), /data changed size/);
    assert.deepEqual(readFileSync(path), before);
    assert.deepEqual(listTempFiles(path), []);
  });

  test("an invalid tensor is rejected before anything is written", () => {
    const path = join(dir, "invalid.safetensors");
    writeSafetensorsFile(path, weights(1));
    const before = readFileSync(path);
    assert.throws(() =>
      writeSafetensorsFile(path, { w: { shape: [3], data: new Float32Array(2) } }),
    );
    assert.deepEqual(readFileSync(path), before);
  });

  test("a failing rename (target is a folder) removes the temporary file", () => {
    const path = join(dir, "a-folder.safetensors");
    mkdirSync(join(path, "inside"), { recursive: true });
    assert.throws(
      () => writeSafetensorsFile(path, weights(1)),
      /a-folder\.safetensors: cannot replace/,
    );
    assert.deepEqual(listTempFiles(path), []);
  });

  test("a read-only folder fails cleanly and keeps the old file", (t) => {
    if (process.getuid?.() === 0) {
      t.skip("root ignores folder permissions");
      return;
    }
    const ro = join(dir, "readonly");
    mkdirSync(ro);
    const path = join(ro, "model.safetensors");
    writeSafetensorsFile(path, weights(1));
    const before = readFileSync(path);
    chmodSync(ro, 0o555);
    try {
      assert.throws(() => writeSafetensorsFile(path, weights(2)), /cannot create a temporary file/);
    } finally {
      chmodSync(ro, 0o755);
    }
    assert.deepEqual(readFileSync(path), before);
  });

  test("a file written by hand in the documented layout reads back", () => {
    const path = join(dir, "hand.safetensors");
    writeFileSync(
      path,
      handMade('{"x":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}', [7, 0, 0, 0]),
    );
    assert.deepEqual([...readSafetensorsFile(path).tensors["x"]!.data], [7]);
  });
});

describe("half precision", () => {
  test("encodeF16 is the exact inverse of decodeF16 on every half value", () => {
    const halves = new Uint16Array(65536).map((_, i) => i);
    const wide = decodeF16(new Uint8Array(halves.buffer));
    const back = encodeF16(wide);
    for (let i = 0; i < 65536; i++) {
      const nan = (i & 0x7c00) === 0x7c00 && (i & 0x3ff) !== 0;
      if (nan)
        assert.ok(Number.isNaN(decodeF16(new Uint8Array(new Uint16Array([back[i]!]).buffer))[0]!));
      else assert.equal(back[i], i, `half 0x${i.toString(16)}`);
    }
  });

  test("encodeF16 rounds to the nearest half, ties to even, overflow to infinity", () => {
    const rng = new Rng(3);
    const x = new Float32Array(20000);
    for (let i = 0; i < x.length; i++) x[i] = (rng.uniform() - 0.5) * 2 ** (rng.int(40) - 26);
    const h = decodeF16(new Uint8Array(encodeF16(x).buffer));
    // No half value lies strictly closer: check both neighbours of the chosen one.
    const bits = encodeF16(x);
    for (let i = 0; i < x.length; i++) {
      const err = Math.abs(h[i]! - x[i]!);
      for (const d of [-1, 1]) {
        const nb = (bits[i]! & 0x7fff) + d;
        if (nb < 0 || nb >= 0x7c00) continue;
        const v = decodeF16(new Uint8Array(new Uint16Array([(bits[i]! & 0x8000) | nb]).buffer))[0]!;
        assert.ok(Math.abs(v - x[i]!) >= err, `x = ${x[i]}: ${h[i]} is not the nearest half`);
      }
    }
    // 1 + 2⁻¹¹ is halfway between 1 and 1 + 2⁻¹⁰: ties go to the even mantissa (1).
    const ties = decodeF16(
      new Uint8Array(
        encodeF16(Float32Array.of(1 + 2 ** -11, 1 + 3 * 2 ** -11, 70000, -1e-9)).buffer,
      ),
    );
    assert.deepEqual(Array.from(ties), [1, 1 + 2 ** -9, Number.POSITIVE_INFINITY, -0]);
  });

  test("a half tensor is written as F16 at half the bytes and reads back rounded", () => {
    const data = Float32Array.of(0.1, -2.5, 1000.3, 3e-6);
    const bytes = serializeSafetensors({ w: { shape: [2, 2], data, half: true } });
    const f = parseSafetensors(bytes);
    assert.equal(f.tensors.w!.dtype, "F16");
    assert.deepEqual(
      Array.from(f.tensors.w!.data),
      Array.from(decodeF16(new Uint8Array(encodeF16(data).buffer))),
    );
    const full = serializeSafetensors({ w: { shape: [2, 2], data } });
    assert.ok(full.byteLength - bytes.byteLength >= 8);
    assert.throws(
      () => serializeSafetensors({ i: { shape: [1], data: Int32Array.of(1), half: true } }),
      /half: a Float32Array only/,
    );
  });
});
