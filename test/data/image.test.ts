import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import sharp from "sharp";
import {
  createImage,
  decodeImage,
  encodePng,
  floatToImage,
  type Image,
  imageToFloat,
  padImage,
  readImage,
  rgbToGreyIfGrey,
  toRgb,
  writePng,
} from "../../src/data/image.js";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "tf-image-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Returns an RGB image whose pixel (x, y) is (x·10, y·10, x + y). */
function gradient(width: number, height: number): Image {
  const img = createImage(width, height, 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) img.data.set([x * 10, y * 10, x + y], 3 * (y * width + x));
  }
  return img;
}

describe("PNG round trip", () => {
  it("writes and reads RGB pixels exactly", async () => {
    const img = gradient(7, 5);
    const path = join(dir, "rgb.png");
    await writePng(path, img);
    const back = await readImage(path, { channels: 3 });
    assert.deepEqual(back, img);
  });

  it("writes a grey image as a 1-channel PNG and reads it back exactly", async () => {
    const img = createImage(4, 3, 1);
    img.data.set([0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 255]);
    const png = await encodePng(img);
    assert.equal((await sharp(png).metadata()).channels, 1);
    assert.deepEqual(await decodeImage(png, "grey.png", { channels: 1 }), img);
  });

  it("replicates grey into RGB when 3 channels are asked for", async () => {
    const img = createImage(2, 1, 1);
    img.data.set([7, 200]);
    const rgb = await decodeImage(await encodePng(img), "g.png", { channels: 3 });
    assert.deepEqual([...rgb.data], [7, 7, 7, 200, 200, 200]);
  });

  it("writes atomically: the parent is created and no temp file is left", async () => {
    const path = join(dir, "nested", "deeper", "x.png");
    await writePng(path, gradient(3, 3));
    assert.deepEqual(await readdir(join(dir, "nested", "deeper")), ["x.png"]);
  });

  it("refuses to encode an image whose data length does not match its shape", async () => {
    const bad = { width: 4, height: 4, channels: 3 as const, data: new Uint8Array(10) };
    await assert.rejects(encodePng(bad), /4×4×3 = 48 bytes, got 10/);
  });
});

describe("decoding", () => {
  it("composites transparency on white", async () => {
    // Pixel 0 fully transparent, pixel 1 opaque red, pixel 2 half-transparent red.
    const rgba = Buffer.from([0, 0, 0, 0, 255, 0, 0, 255, 255, 0, 0, 128]);
    const png = await sharp(rgba, { raw: { width: 3, height: 1, channels: 4 } })
      .png()
      .toBuffer();
    const img = await decodeImage(png, "alpha.png", { channels: 3 });
    assert.deepEqual([...img.data.subarray(0, 6)], [255, 255, 255, 255, 0, 0]);
    assert.equal(img.data[6], 255);
    assert.ok(Math.abs(img.data[7]! - 127) <= 2 && Math.abs(img.data[8]! - 127) <= 2);
  });

  it("resizes to size×size by scaling the short side and cropping the centre", async () => {
    // 40×20: red left quarter, blue middle half, green right quarter → crop keeps the blue.
    const img = createImage(40, 20, 3);
    for (let y = 0; y < 20; y++) {
      for (let x = 0; x < 40; x++) {
        const colour = x < 10 ? [255, 0, 0] : x < 30 ? [0, 0, 255] : [0, 255, 0];
        img.data.set(colour, 3 * (y * 40 + x));
      }
    }
    const out = await decodeImage(await encodePng(img), "wide.png", { channels: 3, size: 10 });
    assert.equal(out.width, 10);
    assert.equal(out.height, 10);
    for (let p = 0; p < 100; p++) {
      assert.ok(out.data[3 * p + 2]! > 200 && out.data[3 * p]! < 40, `pixel ${p} should be blue`);
    }
  });

  it("decodes JPEG", async () => {
    const jpeg = await sharp(Buffer.alloc(8 * 8 * 3, 120), {
      raw: { width: 8, height: 8, channels: 3 },
    })
      .jpeg()
      .toBuffer();
    const img = await decodeImage(jpeg, "photo.jpg", { channels: 1 });
    assert.equal(img.channels, 1);
    assert.ok(img.data.every((v) => Math.abs(v - 120) <= 3));
  });

  it("accepts an RGB file with grey content as 1 channel but refuses real colour", async () => {
    const greyish = await encodePng(
      toRgb({ width: 2, height: 1, channels: 1, data: new Uint8Array([3, 250]) }),
    );
    assert.deepEqual([...(await decodeImage(greyish, "g.png", { channels: 1 })).data], [3, 250]);
    const colourful = await encodePng(gradient(4, 4));
    await assert.rejects(
      decodeImage(colourful, "colour.png", { channels: 1 }),
      /colour\.png: has colour but 1 channel \(greyscale\) was required/,
    );
  });
});

describe("decoding errors name the file and the problem", () => {
  it("missing file", async () => {
    const path = join(dir, "nope.png");
    await assert.rejects(readImage(path, { channels: 3 }), { message: `${path}: file not found` });
  });

  it("not an image", async () => {
    const path = join(dir, "text.png");
    await writeFile(path, "hello, I am not a PNG");
    await assert.rejects(readImage(path, { channels: 3 }), (err: Error) => {
      assert.match(err.message, /text\.png: not a readable image/);
      return true;
    });
  });

  it("truncated PNG", async () => {
    const png = await encodePng(gradient(32, 32));
    await assert.rejects(
      decodeImage(png.subarray(0, 120), "cut.png", { channels: 3 }),
      /cut\.png: corrupt PNG/,
    );
  });

  it("unsupported format", async () => {
    const gif = await sharp(Buffer.alloc(48, 9), { raw: { width: 4, height: 4, channels: 3 } })
      .gif()
      .toBuffer();
    await assert.rejects(
      decodeImage(gif, "anim.gif", { channels: 3 }),
      /anim\.gif: unsupported image format 'gif' \(expected PNG or JPEG\)/,
    );
  });

  it("bad size", async () => {
    const png = await encodePng(gradient(2, 2));
    await assert.rejects(
      decodeImage(png, "a.png", { channels: 3, size: 0 }),
      /a\.png: size must be/,
    );
  });
});

describe("float conversion", () => {
  it("lays out CHW and maps 0 → -1, 255 → 1", () => {
    const img = createImage(2, 1, 3);
    img.data.set([0, 255, 51, 255, 0, 102]);
    const chw = imageToFloat(img);
    const expected = [-1, 1, 1, -1, 51 / 127.5 - 1, 102 / 127.5 - 1];
    expected.forEach((v, i) => {
      assert.ok(Math.abs(chw[i]! - v) < 1e-6, `index ${i}`);
    });
  });

  it("round-trips every byte value exactly", () => {
    const img = createImage(256, 1, 1);
    for (let i = 0; i < 256; i++) img.data[i] = i;
    assert.deepEqual(floatToImage(imageToFloat(img), 1, 1, 256), img);
    const rgb = gradient(9, 4);
    assert.deepEqual(floatToImage(imageToFloat(rgb), 3, 4, 9), rgb);
  });

  it("clamps out-of-range values and maps NaN to black", () => {
    const img = floatToImage(new Float32Array([-3, 2, Number.NaN, 0]), 1, 1, 4);
    assert.deepEqual([...img.data], [0, 255, 0, 128]);
  });

  it("refuses a length that does not match the shape", () => {
    assert.throws(
      () => floatToImage(new Float32Array(5), 1, 2, 2),
      /expected 1×2×2 = 4 values, got 5/,
    );
  });
});

describe("channel and size helpers", () => {
  it("pads centred with the fill value", () => {
    const img = createImage(2, 2, 1);
    img.data.fill(9);
    const out = padImage(img, 4, 1);
    assert.deepEqual([...out.data], [1, 1, 1, 1, 1, 9, 9, 1, 1, 9, 9, 1, 1, 1, 1, 1]);
    assert.throws(() => padImage(img, 1), /cannot pad 2×2 to smaller 1×1/);
  });

  it("converts RGB to grey only when no pixel has colour", () => {
    assert.equal(rgbToGreyIfGrey(gradient(3, 3)), null);
    const grey = rgbToGreyIfGrey(
      toRgb({ width: 1, height: 1, channels: 1, data: new Uint8Array([77]) }),
    );
    assert.deepEqual([...grey!.data], [77]);
  });

  it("reads back a file written by writePng byte-identically after a second write", async () => {
    const path = join(dir, "same.png");
    await writePng(path, gradient(5, 5));
    const first = await readFile(path);
    await writePng(path, gradient(5, 5));
    assert.deepEqual(await readFile(path), first);
  });
});
