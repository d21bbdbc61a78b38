import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  type Document,
  DocumentError,
  loadDocuments,
  writeDocuments,
} from "../../src/data/documents.js";
import { createImage, encodePng, type Image, writePng } from "../../src/data/image.js";

let dir: string;
const options = { imageSize: 8, channels: 3 as const, onError: "skip" as const };

function solid(size: number, rgb: [number, number, number]): Image {
  const img = createImage(size, size, 3);
  for (let p = 0; p < size * size; p++) img.data.set(rgb, 3 * p);
  return img;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "tf-docs-"));
  await mkdir(join(dir, "img"));
  await writePng(join(dir, "img", "red.png"), solid(16, [255, 0, 0]));
  await writePng(join(dir, "img", "blue.png"), solid(8, [0, 0, 255]));
  await writeFile(
    join(dir, "img", "broken.png"),
    (await encodePng(solid(16, [1, 2, 3]))).subarray(0, 60),
  );
  await writeFile(join(dir, "img", "notes.txt"), "not an image");
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Returns the path of a JSONL file in the test folder holding the given lines. */
async function jsonl(name: string, lines: Array<string | Buffer>): Promise<string> {
  const path = join(dir, name);
  await writeFile(
    path,
    Buffer.concat(lines.map((l) => Buffer.concat([Buffer.from(l), Buffer.from("\n")]))),
  );
  return path;
}

describe("loadDocuments", () => {
  it("reads interleaved text and images, resized, with labels", async () => {
    const path = await jsonl("good.jsonl", [
      '{"parts": [{"text": "a red square"}, {"image": "img/red.png"}]}',
      "",
      '{"parts": [{"image": "img/blue.png"}, {"text": "blue"}, {"image": "img/red.png"}], "labels": {"colour": "blue", "n": 2}}',
    ]);
    const { documents, skipped } = await loadDocuments(path, options);
    assert.deepEqual(skipped, []);
    assert.equal(documents.length, 2);
    const [first, second] = documents as [Document, Document];
    assert.deepEqual(first.parts[0], { text: "a red square" });
    const image = (first.parts[1] as { image: Image; source: string }).image;
    assert.equal(image.width, 8);
    assert.equal(image.height, 8);
    assert.deepEqual([...image.data.subarray(0, 3)], [255, 0, 0]);
    assert.equal((first.parts[1] as { source: string }).source, "img/red.png");
    assert.equal(first.labels, undefined);
    assert.deepEqual(second.labels, { colour: "blue", n: 2 });
    assert.equal(second.parts.length, 3);
  });

  it("accepts CRLF line endings and whitespace-only text", async () => {
    const path = join(dir, "crlf.jsonl");
    await writeFile(path, '{"parts": [{"text": " "}]}\r\n{"parts": [{"text": "x"}]}\r\n');
    const { documents } = await loadDocuments(path, options);
    assert.deepEqual(
      documents.map((d) => d.parts),
      [[{ text: " " }], [{ text: "x" }]],
    );
  });

  it("skips every kind of bad document and reports line, part and reason", async () => {
    const path = await jsonl("bad.jsonl", [
      '{"parts": [{"text": "fine"}]}', // 1 ok
      Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), // 2 invalid UTF-8
      "{not json", // 3
      "[1, 2]", // 4 not an object
      '{"labels": {}}', // 5 parts missing
      '{"parts": "hello"}', // 6 parts not an array
      '{"parts": []}', // 7 empty
      '{"parts": [{"text": "ok"}, {"txt": "typo"}]}', // 8 unknown key, part 1
      '{"parts": [{"text": "a", "image": "img/red.png"}]}', // 9 both keys
      '{"parts": [{"text": 5}]}', // 10 wrong type
      '{"parts": [{"text": ""}]}', // 11 empty text
      '{"parts": [{"text": "a"}, {"image": "img/missing.png"}]}', // 12 missing image
      '{"parts": [{"image": "img/broken.png"}]}', // 13 corrupt image
      '{"parts": [{"image": "img/notes.txt"}]}', // 14 not an image
      '{"parts": [{"text": "ok"}], "extra": 1}', // 15 unknown top-level key
      '{"parts": [{"text": "ok"}], "labels": {"a": [1]}}', // 16 bad label
      '{"parts": [{"image": "img/blue.png"}]}', // 17 ok
      '{"parts": [null]}', // 18 part not an object
    ]);
    const { documents, skipped } = await loadDocuments(path, options);
    assert.equal(documents.length, 2);
    const byLine = new Map(skipped.map((s) => [s.line, s]));
    assert.deepEqual(
      skipped.map((s) => s.line),
      [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18],
    );
    const expect = (line: number, part: number | undefined, reason: RegExp) => {
      const s = byLine.get(line)!;
      assert.equal(s.part, part, `line ${line} part`);
      assert.match(s.reason, reason, `line ${line}`);
    };
    expect(2, undefined, /not valid UTF-8/);
    expect(3, undefined, /invalid JSON/);
    expect(4, undefined, /expected a JSON object, got an array/);
    expect(5, undefined, /missing 'parts'/);
    expect(6, undefined, /'parts' must be an array, got a string/);
    expect(7, undefined, /'parts' is empty/);
    expect(8, 1, /exactly one key, 'text' or 'image'; got 'txt'/);
    expect(9, 0, /got 'text', 'image'/);
    expect(10, 0, /'text' must be a string, got a number/);
    expect(11, 0, /'text' is empty/);
    expect(12, 1, /missing\.png: file not found/);
    expect(13, 0, /broken\.png: corrupt PNG/);
    expect(14, 0, /notes\.txt: not a readable image/);
    expect(15, undefined, /unknown key 'extra'/);
    expect(16, undefined, /label 'a' must be a string or finite number/);
    expect(18, 0, /expected an object, got null/);
  });

  it("with onError 'throw' names the file, line and part of the first error", async () => {
    const path = await jsonl("throw.jsonl", [
      '{"parts": [{"text": "fine"}]}',
      '{"parts": [{"text": "fine"}, {"image": "img/missing.png"}]}',
      '{"parts": []}',
    ]);
    // Line 3 fails validation before any image is read, so it is the one reported.
    await assert.rejects(loadDocuments(path, { ...options, onError: "throw" }), (err: unknown) => {
      assert.ok(err instanceof DocumentError);
      assert.equal(err.message, `${path}:3: 'parts' is empty`);
      return true;
    });
    const imagesOnly = await jsonl("throw2.jsonl", [
      '{"parts": [{"text": "fine"}, {"image": "img/missing.png"}]}',
    ]);
    await assert.rejects(
      loadDocuments(imagesOnly, { ...options, onError: "throw" }),
      new RegExp(
        `^DocumentError: ${imagesOnly.replace(/[.]/g, "\\.")}:1: part 1: .*missing\\.png: file not found`,
      ),
    );
  });

  it("refuses colour images when 1 channel is required", async () => {
    const path = await jsonl("grey.jsonl", ['{"parts": [{"image": "img/red.png"}]}']);
    const { skipped } = await loadDocuments(path, { ...options, channels: 1 });
    assert.equal(skipped.length, 1);
    assert.match(skipped[0]!.reason, /has colour but 1 channel/);
  });

  it("reports a missing or unreadable file", async () => {
    const path = join(dir, "absent.jsonl");
    await assert.rejects(loadDocuments(path, options), { message: `${path}: file not found` });
    await assert.rejects(
      loadDocuments(dir, options),
      new RegExp(`${dir}: cannot read \\(EISDIR\\)`),
    );
  });

  it("validates its options", async () => {
    const path = await jsonl("opts.jsonl", ['{"parts": [{"text": "x"}]}']);
    await assert.rejects(
      loadDocuments(path, { ...options, imageSize: 0 }),
      /imageSize must be a positive integer/,
    );
  });
});

describe("writeDocuments", () => {
  it("round-trips through loadDocuments with images beside the file", async () => {
    const docs: Document[] = [
      {
        parts: [{ text: "a red square" }, { image: solid(8, [255, 0, 0]) }],
        labels: { colour: "red" },
      },
      {
        parts: [
          { image: solid(8, [0, 200, 0]) },
          { text: "then text" },
          { image: solid(8, [1, 2, 3]) },
        ],
      },
    ];
    const path = join(dir, "out", "docs.jsonl");
    await writeDocuments(path, docs, join(dir, "out", "images"));
    const text = await readFile(path, "utf8");
    assert.match(text.split("\n")[0]!, /"image":"images\/doc0-part1\.png"/);
    const { documents, skipped } = await loadDocuments(path, options);
    assert.deepEqual(skipped, []);
    assert.equal(documents.length, 2);
    assert.deepEqual(documents[0]!.labels, { colour: "red" });
    assert.deepEqual((documents[1]!.parts[2] as { image: Image }).image, solid(8, [1, 2, 3]));
    assert.deepEqual(documents[1]!.parts[1], { text: "then text" });
  });
});
