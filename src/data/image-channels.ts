/**
 * Converting images between grey and colour for a model that reads the other kind: colour →
 * grey by luminance, grey → colour by repetition. Lossy in the first direction, so callers
 * that do it on a user's behalf should say so.
 */
import sharp from "sharp";
import { checkImage, type Image, type ReadImageOptions, readImage, toRgb } from "./image.js";

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

/**
 * Returns the image at `path` with the requested channels (converted as `convertChannels`
 * does, resized as `readImage` does) and the channels its file stores: 1 for a grey PNG or
 * JPEG, 3 for colour (alpha not counted). Errors name the file.
 */
export async function readImageConverted(
  path: string,
  options: ReadImageOptions,
): Promise<{ image: Image; fileChannels: 1 | 3 }> {
  // Decoded as colour first: readImage refuses colour → grey, which is the point here.
  const rgb = await readImage(path, { ...options, channels: 3 });
  const meta = await sharp(path).metadata();
  const fileChannels = meta.channels - (meta.hasAlpha ? 1 : 0) >= 3 ? 3 : 1;
  return { image: convertChannels(rgb, options.channels), fileChannels };
}
