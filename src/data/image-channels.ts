/**
 * Converting images between grey and colour for a model that reads the other kind: colour →
 * grey by luminance, grey → colour by repetition. Lossy in the first direction, so callers
 * that do it on a user's behalf should say so.
 */
import sharp from "sharp";
import { type ReadImageOptions, readImage } from "./image.js";
import { convertChannels, type Image } from "./pixels.js";

export { convertChannels };

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
