/**
 * Images in memory (8-bit, HWC, 1 or 3 channels) and their trip to and from disk and to the
 * float CHW layout the models read. Decoding and encoding go through sharp (libvips).
 */
import { mkdir, readFile } from "node:fs/promises";
import { dirname } from "node:path";
import sharp from "sharp";
import { writeFileAtomic as writeAtomic } from "../tensor/atomic-write.js";
import { Tensor } from "../tensor/tensor.js";

/** An 8-bit image: `data[(y * width + x) * channels + c]`, row-major, channels interleaved. */
export interface Image {
  width: number;
  height: number;
  channels: 1 | 3;
  data: Uint8Array;
}

/** How a file on disk becomes an `Image`. */
export interface ReadImageOptions {
  /** Channels of the result. Grey → RGB is always allowed; colour → grey only when lossless. */
  channels: 1 | 3;
  /** Resize to size×size, scaling the short side to `size` and cropping the long side centred. */
  size?: number;
}

/**
 * Largest difference between colour channels of one pixel that still counts as grey.
 * JPEG chroma subsampling leaves small differences in grey photos; this tolerates them.
 */
const GREY_TOLERANCE = 12;

/** White, the colour transparent pixels are composited on. */
const WHITE = { r: 255, g: 255, b: 255 };

/** Returns a new zero-filled (black) image of the given shape. */
export function createImage(width: number, height: number, channels: 1 | 3): Image {
  return { width, height, channels, data: new Uint8Array(width * height * channels) };
}

/** Returns the image unchanged if its shape is consistent, else throws naming `what`. */
export function checkImage(img: Image, what = "image"): Image {
  const { width, height, channels, data } = img;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new Error(`${what}: width and height must be positive integers, got ${width}×${height}`);
  }
  if (channels !== 1 && channels !== 3) {
    throw new Error(`${what}: channels must be 1 or 3, got ${channels}`);
  }
  if (!(data instanceof Uint8Array) || data.length !== width * height * channels) {
    throw new Error(
      `${what}: data must be a Uint8Array of ${width}×${height}×${channels} = ` +
        `${width * height * channels} bytes, got ${data?.length ?? "none"}`,
    );
  }
  return img;
}

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

/**
 * Returns the grey image holding the same pixels, or null if any pixel has colour (channels
 * differing by more than `GREY_TOLERANCE`), since dropping colour would lose information.
 */
export function rgbToGreyIfGrey(img: Image): Image | null {
  if (img.channels === 1) return img;
  const n = img.width * img.height;
  const out = new Uint8Array(n);
  const src = img.data;
  for (let i = 0; i < n; i++) {
    const r = src[3 * i]!;
    const g = src[3 * i + 1]!;
    const b = src[3 * i + 2]!;
    const hi = Math.max(r, g, b);
    const lo = Math.min(r, g, b);
    if (hi - lo > GREY_TOLERANCE) return null;
    out[i] = Math.round(0.299 * r + 0.587 * g + 0.114 * b);
  }
  return { width: img.width, height: img.height, channels: 1, data: out };
}

/** Returns an RGB copy of the image (grey replicated into all three channels). */
export function toRgb(img: Image): Image {
  if (img.channels === 3) return img;
  const n = img.width * img.height;
  const out = new Uint8Array(3 * n);
  for (let i = 0; i < n; i++) {
    const v = img.data[i]!;
    out[3 * i] = v;
    out[3 * i + 1] = v;
    out[3 * i + 2] = v;
  }
  return { width: img.width, height: img.height, channels: 3, data: out };
}

/** Returns the image centred on a size×size canvas filled with `fill` (size ≥ both sides). */
export function padImage(img: Image, size: number, fill = 0): Image {
  if (size < img.width || size < img.height) {
    throw new Error(`padImage: cannot pad ${img.width}×${img.height} to smaller ${size}×${size}`);
  }
  if (size === img.width && size === img.height) return img;
  const c = img.channels;
  const out = createImage(size, size, c);
  out.data.fill(fill);
  const x0 = (size - img.width) >> 1;
  const y0 = (size - img.height) >> 1;
  const rowBytes = img.width * c;
  for (let y = 0; y < img.height; y++) {
    const from = y * rowBytes;
    out.data.set(img.data.subarray(from, from + rowBytes), ((y0 + y) * size + x0) * c);
  }
  return out;
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

/** Returns the image as floats in CHW order, scaled from [0, 255] to [-1, 1]. */
export function imageToFloat(img: Image): Float32Array {
  const { width, height, channels, data } = img;
  const plane = width * height;
  const out = new Float32Array(plane * channels);
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < plane; i++) out[c * plane + i] = data[i * channels + c]! / 127.5 - 1;
  }
  return out;
}

/**
 * Returns the 8-bit image of CHW floats in [-1, 1]; values outside are clamped and NaN maps
 * to -1 (black), so a diverged sample still writes a viewable file.
 */
export function floatToImage(chw: ArrayLike<number>, channels: 1 | 3, h: number, w: number): Image {
  const plane = h * w;
  if (chw.length !== plane * channels) {
    throw new Error(
      `floatToImage: expected ${channels}×${h}×${w} = ${plane * channels} values, got ${chw.length}`,
    );
  }
  const img = createImage(w, h, channels);
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < plane; i++) {
      const v = chw[c * plane + i]!;
      const clamped = Number.isNaN(v) ? -1 : Math.min(1, Math.max(-1, v));
      img.data[i * channels + c] = Math.round((clamped + 1) * 127.5);
    }
  }
  return img;
}

/** Returns images (all the same shape) as one tensor [N, C, H, W] in [−1, 1]. */
export function imagesToTensor(images: readonly Image[]): Tensor {
  if (images.length === 0) throw new Error("imagesToTensor: no images");
  const { width, height, channels } = images[0]!;
  const per = width * height * channels;
  const out = new Float32Array(images.length * per);
  images.forEach((img, i) => {
    if (img.width !== width || img.height !== height || img.channels !== channels) {
      throw new Error(
        `imagesToTensor: image ${i} is ${img.width}×${img.height}×${img.channels}, not ${width}×${height}×${channels}`,
      );
    }
    out.set(imageToFloat(img), i * per);
  });
  return new Tensor(out, [images.length, channels, height, width]);
}
