/**
 * Images on disk: decoding PNG and JPEG files and bytes into `Image`s and encoding them back,
 * through sharp (libvips). The in-memory side (the `Image` type, float CHW conversions, grey
 * and colour) is in `./pixels.ts`, which runs in a browser too, and is re-exported here.
 */
import { mkdir, readFile } from "node:fs/promises";
import { dirname } from "node:path";
import sharp from "sharp";
import { writeFileAtomic as writeAtomic } from "../tensor/atomic-write.js";
import { checkImage, type Image, rgbToGreyIfGrey } from "./pixels.js";

export {
  checkImage,
  createImage,
  floatToImage,
  type Image,
  imagesToTensor,
  imageToFloat,
  padImage,
  rgbToGreyIfGrey,
  toRgb,
} from "./pixels.js";

/** How a file on disk becomes an `Image`. */
export interface ReadImageOptions {
  /** Channels of the result. Grey → RGB is always allowed; colour → grey only when lossless. */
  channels: 1 | 3;
  /** Resize to size×size, scaling the short side to `size` and cropping the long side centred. */
  size?: number;
}

/** White, the colour transparent pixels are composited on. */
const WHITE = { r: 255, g: 255, b: 255 };

/**
 * Returns the decoded PNG or JPEG in `bytes` as an `Image` with the requested channels:
 * alpha composited on white, optionally resized with a centre crop. `source` names the
 * bytes (a path or URL) in error messages.
 */
export async function decodeImage(
  bytes: Uint8Array,
  source: string,
  options: ReadImageOptions,
): Promise<Image> {
  const { channels, size } = options;
  if (size !== undefined && (!Number.isInteger(size) || size < 1)) {
    throw new Error(`${source}: size must be a positive integer, got ${size}`);
  }
  let format: string | undefined;
  try {
    format = (await sharp(bytes).metadata()).format;
  } catch (err) {
    const sniffed = sniffFormat(bytes);
    const what = sniffed ? `corrupt ${sniffed}` : "not a readable image";
    throw new Error(`${source}: ${what} (${(err as Error).message})`);
  }
  if (format !== "png" && format !== "jpeg") {
    throw new Error(`${source}: unsupported image format '${format}' (expected PNG or JPEG)`);
  }
  let raw: { data: Buffer; info: { width: number; height: number; channels: number } };
  try {
    // Decode to 8-bit sRGB first and convert channels ourselves, so the rule for colour →
    // grey (lossless only) is ours and visible, not a side effect of libvips defaults.
    let pipeline = sharp(bytes, { failOn: "error", autoOrient: true }).flatten({
      background: WHITE,
    });
    if (size !== undefined) {
      pipeline = pipeline.resize(size, size, { fit: "cover", position: "centre" });
    }
    raw = await pipeline
      .toColourspace("srgb")
      .raw({ depth: "uchar" })
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new Error(`${source}: corrupt ${format.toUpperCase()} (${(err as Error).message})`);
  }
  const { width, height } = raw.info;
  if (raw.info.channels !== 3) {
    throw new Error(`${source}: decoded to ${raw.info.channels} channels, expected 3`);
  }
  const rgb: Image = { width, height, channels: 3, data: new Uint8Array(raw.data) };
  if (channels === 3) return rgb;
  const grey = rgbToGreyIfGrey(rgb);
  if (grey === null) {
    throw new Error(
      `${source}: has colour but 1 channel (greyscale) was required; ` +
        "convert it to greyscale first or use 3 channels",
    );
  }
  return grey;
}

/** Returns "PNG" or "JPEG" if the bytes start with that format's signature, else null. */
function sniffFormat(bytes: Uint8Array): "PNG" | "JPEG" | null {
  if (bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47)
    return "PNG";
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return "JPEG";
  return null;
}

/** Returns the image at `path` decoded as by `decodeImage`; errors name the file. */
export async function readImage(path: string, options: ReadImageOptions): Promise<Image> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "file not found" : `cannot read (${code ?? String(err)})`;
    throw new Error(`${path}: ${why}`);
  }
  return decodeImage(bytes, path, options);
}

/** Returns the image encoded as PNG bytes (greyscale PNG for 1 channel, RGB for 3). */
export async function encodePng(img: Image): Promise<Buffer> {
  checkImage(img);
  const { width, height, channels } = img;
  let pipeline = sharp(img.data, { raw: { width, height, channels } });
  // Without this, libvips writes a 1-channel raw buffer as an RGB PNG.
  if (channels === 1) pipeline = pipeline.toColourspace("b-w");
  return pipeline.png({ compressionLevel: 6 }).toBuffer();
}

/**
 * Returns once `bytes` are at `path`, written atomically (temp file, fsync, rename) by the one
 * writer of the project, so every temporary file has the same recognisable name and a failed
 * write (a full disk) leaves the previous file and an error naming `path`.
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array | string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  writeAtomic(path, [typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes]);
}

/** Returns once the image is written to `path` as PNG, atomically (temp file + rename). */
export async function writePng(path: string, img: Image): Promise<void> {
  await writeFileAtomic(path, await encodePng(img));
}
