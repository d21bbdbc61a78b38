import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  CHAR_ADVANCE,
  drawText,
  GLYPH_HEIGHT,
  glyphFor,
  textWidth,
  toFontText,
  wrapText,
} from "../../src/data/font.js";
import { renderImageGrid, writeImageGrid } from "../../src/data/grid.js";
import { createImage, type Image, readImage } from "../../src/data/image.js";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "tf-grid-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function solid(size: number, rgb: [number, number, number]): Image {
  const img = createImage(size, size, 3);
  for (let p = 0; p < size * size; p++) img.data.set(rgb, 3 * p);
  return img;
}

/** Returns how many pixels in the rows [y0, y1) are dark (text ink). */
function darkPixels(img: Image, y0: number, y1: number): number {
  let n = 0;
  for (let y = y0; y < y1; y++) {
    for (let x = 0; x < img.width; x++) if (img.data[3 * (y * img.width + x)]! < 100) n++;
  }
  return n;
}

describe("font", () => {
  it("has a glyph for every printable ASCII character, and they differ", () => {
    const seen = new Set<string>();
    for (let c = 33; c < 127; c++) {
      const bits = glyphFor(String.fromCharCode(c));
      assert.ok(
        bits.some((b) => b === 1),
        `glyph ${String.fromCharCode(c)} is blank`,
      );
      seen.add(bits.join(""));
    }
    assert.equal(seen.size, 94);
  });

  it("folds accents and typographic punctuation to ASCII", () => {
    assert.equal(toFontText("Côte d’Ivoire — “ok”"), 'Cote d\'Ivoire - "ok"');
  });

  it("wraps at spaces and splits words longer than a line", () => {
    assert.deepEqual(wrapText("a red circle above a blue square", 12), [
      "a red circle",
      "above a blue",
      "square",
    ]);
    assert.deepEqual(wrapText("abcdefghij xy", 4), ["abcd", "efgh", "ij", "xy"]);
    assert.equal(textWidth("ab"), 2 * CHAR_ADVANCE - 1);
  });

  it("draws ink only inside the text box and clips at the image edge", () => {
    const img = createImage(20, 12, 1);
    drawText(img, "Hi", 1, 1, [255]);
    for (let y = 0; y < 12; y++) {
      for (let x = 0; x < 20; x++) {
        if (img.data[y * 20 + x])
          assert.ok(x >= 1 && x < 1 + 2 * CHAR_ADVANCE && y >= 1 && y < 1 + GLYPH_HEIGHT);
      }
    }
    drawText(img, "clipped", 15, 8, [255], 3); // must not throw
  });
});

describe("image grid", () => {
  it("upscales 32 px images to 96 px cells and lays them out in columns", () => {
    const images = [solid(32, [255, 0, 0]), solid(32, [0, 255, 0]), solid(32, [0, 0, 255])];
    const grid = renderImageGrid(images, { columns: 2, padding: 4 });
    assert.equal(grid.width, 4 + 2 * (96 + 4));
    assert.equal(grid.height, 4 + 2 * (96 + 4));
    const at = (x: number, y: number) => [
      ...grid.data.subarray(3 * (y * grid.width + x), 3 * (y * grid.width + x) + 3),
    ];
    assert.deepEqual(at(4, 4), [255, 0, 0]);
    assert.deepEqual(at(4 + 100 + 95, 4 + 95), [0, 255, 0]);
    assert.deepEqual(at(4 + 50, 104 + 50), [0, 0, 255]);
    assert.deepEqual(at(0, 0), [255, 255, 255]);
  });

  it("puts wrapped captions under their images", () => {
    const images = [solid(32, [200, 200, 200]), solid(32, [200, 200, 200])];
    const captions = ["a red circle above a blue square", "short"];
    const grid = renderImageGrid(images, { columns: 2, padding: 4, captions });
    // Three lines of text fit under a 96 px cell for the longer caption.
    const lines = wrapText(captions[0]!, Math.floor(97 / CHAR_ADVANCE));
    assert.equal(lines.length, 3);
    assert.ok(grid.height >= 4 + 96 + lines.length * (GLYPH_HEIGHT + 1) + 4);
    assert.equal(darkPixels(grid, 0, 100), 0);
    assert.ok(darkPixels(grid, 100, grid.height) > 100);
  });

  it("mixes grey and RGB images and honours an explicit scale", () => {
    const grey = createImage(28, 28, 1);
    grey.data.fill(128);
    const grid = renderImageGrid([grey, solid(28, [0, 0, 0])], { scale: 2, padding: 0 });
    assert.equal(grid.width, 112);
    assert.equal(grid.height, 56);
    assert.deepEqual([...grid.data.subarray(0, 3)], [128, 128, 128]);
  });

  it("rejects bad input with a message", () => {
    assert.throws(() => renderImageGrid([]), /no images/);
    assert.throws(
      () => renderImageGrid([solid(4, [0, 0, 0])], { captions: ["a", "b"] }),
      /2 captions for 1 images/,
    );
    assert.throws(
      () => renderImageGrid([solid(4, [0, 0, 0])], { scale: 0 }),
      /scale must be a positive integer/,
    );
  });

  it("writes a PNG that reads back with the rendered pixels", async () => {
    const images = [solid(32, [255, 0, 0]), solid(32, [0, 128, 255])];
    const path = join(dir, "grid.png");
    await writeImageGrid(path, images, { captions: ["red", "blue"] });
    const back = await readImage(path, { channels: 3 });
    assert.deepEqual(back, renderImageGrid(images, { captions: ["red", "blue"] }));
  });
});
