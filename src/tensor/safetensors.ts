/**
 * Safetensors files: the format itself lives in `./safetensors-format.ts` (bytes in, bytes
 * out, usable in a browser); this module adds reading and writing files in Node.
 */
import { readFileSync } from "node:fs";
import { writeFileAtomic } from "./atomic-write.js";
import {
  parseSafetensors,
  type StFile,
  type StInput,
  safetensorsChunks,
} from "./safetensors-format.js";

export * from "./safetensors-format.js";

/**
 * Returns nothing; writes a safetensors file atomically (temporary file in the same folder,
 * fsync, rename). Data is streamed tensor by tensor, so no second copy of the model is held.
 */
export function writeSafetensorsFile(
  path: string,
  tensors: Record<string, StInput>,
  metadata?: Record<string, string>,
): void {
  writeFileAtomic(path, safetensorsChunks(tensors, metadata));
}

/** Returns the tensors and metadata of the safetensors file at `path`. */
export function readSafetensorsFile(path: string): StFile {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new Error(`${path}: cannot read safetensors file: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return parseSafetensors(bytes, path);
}
