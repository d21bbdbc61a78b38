/**
 * Images in memory (8-bit, HWC, 1 or 3 channels) and their conversions: to and from the float
 * CHW layout the models read, between grey and colour, padding. Plain data, no files: this
 * module runs in a browser too; `./image.ts` adds decoding and encoding files (sharp).
 */
import { Tensor } from "../tensor/tensor.js";

/** An 8-bit image: `data[(y * width + x) * channels + c]`, row-major, channels interleaved. */
export interface Image {
  width: number;
  height: number;
  channels: 1 | 3;
  data: Uint8Array;
}

/**
 * Largest difference between colour channels of one pixel that still counts as grey.
 * JPEG chroma subsampling leaves small differences in grey photos; this tolerates them.
 */
const GREY_TOLERANCE = 12;

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

/**
 * Returns the image with `channels` channels: colour → grey by luminance
 * (0.299 R + 0.587 G + 0.114 B, ITU-R BT.601), grey → RGB by repeating the grey value;
 * the image itself when it already has them.
 */
export function convertChannels(img: Image, channels: 1 | 3): Image {
  checkImage(img);
  if (img.channels === channels) return img;
  if (channels === 3) return toRgb(img);
  const n = img.width * img.height;
  const out = new Uint8Array(n);
  const src = img.data;
  for (let i = 0; i < n; i++) {
    out[i] = Math.round(0.299 * src[3 * i]! + 0.587 * src[3 * i + 1]! + 0.114 * src[3 * i + 2]!);
  }
  return { width: img.width, height: img.height, channels: 1, data: out };
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
