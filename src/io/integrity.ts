/**
 * What makes a stored model trustworthy beyond its format: every weight finite, and the files
 * of a checkpoint belonging together. A checkpoint's config.json records a fingerprint (SHA-256
 * of the canonical content) of its tokenizer and image autoencoder, so a tokenizer.json or VAE
 * copied in from another run with the same vocabulary or shapes is refused instead of
 * producing plausible-looking garbage. Nothing here touches files, so the same checks run
 * when a web page loads a checkpoint.
 */
import type { BpeTokenizer } from "../data/tokenizer-core.js";
import type { Vae } from "../model/vae.js";
import { VqVae } from "../model/vqvae.js";
import { Sha256, sha256Hex } from "./sha256.js";

/** Returns the index of the first NaN or ±Infinity in `data`, or -1 when all are finite. */
export function firstNonFinite(data: ArrayLike<number>): number {
  for (let i = 0; i < data.length; i++) {
    // v - v is 0 for finite numbers and NaN for NaN and ±Infinity: one test instead of two.
    const v = data[i]!;
    if (v - v !== 0) return i;
  }
  return -1;
}

/** Returns a phrase for the non-finite value at `i`, e.g. "NaN at index 12". */
function describe(data: ArrayLike<number>, i: number): string {
  return `${String(data[i])} at index ${i}`;
}

/**
 * Returns nothing; throws when a float tensor read from `file` holds NaN or ±Infinity, naming
 * the file and the tensor. Weights like that load without complaint and then sample noise.
 */
export function checkFiniteLoaded(data: ArrayLike<number>, file: string, tensor: string): void {
  const i = firstNonFinite(data);
  if (i < 0) return;
  throw new Error(
    `${file}: tensor "${tensor}" holds ${describe(data, i)}; the weights are corrupt (a diverged run or a damaged file) — use an earlier checkpoint or train again`,
  );
}

/**
 * Returns nothing; throws before `file` is written when one of `tensors` holds NaN or
 * ±Infinity, naming the file and the tensor (the previous file is left as it was).
 */
export function checkFiniteSaving(
  tensors: Iterable<[string, ArrayLike<number>]>,
  file: string,
): void {
  for (const [name, data] of tensors) {
    const i = firstNonFinite(data);
    if (i >= 0) {
      throw new Error(
        `refusing to save ${file}: tensor "${name}" holds ${describe(data, i)} (the training diverged); the previous file was kept`,
      );
    }
  }
}

/** Returns "sha256:<hex>" of the tokenizer's canonical JSON (whitespace in the file ignored). */
export function tokenizerFingerprint(tokenizer: BpeTokenizer): string {
  return `sha256:${sha256Hex(JSON.stringify(tokenizer.toJSON()))}`;
}

/**
 * Returns "sha256:<hex>" of an image autoencoder's content: its kind, config, latent factors
 * and every parameter (name, shape, float32 values in order). Computed from the loaded module,
 * not the file's bytes, so the same weights stored as F16 or with other metadata order match.
 */
export function autoencoderFingerprint(ae: Vae | VqVae): string {
  const h = new Sha256();
  const facts =
    ae instanceof VqVae
      ? { kind: "vqvae", config: ae.config }
      : { kind: "vae", config: ae.config, scaling: ae.scalingFactor, shift: ae.shiftFactor };
  h.update(JSON.stringify(facts));
  for (const [name, t] of ae.namedParameters()) {
    h.update(`\n${name}[${t.shape.join(",")}]`);
    const f = t.f32;
    h.update(new Uint8Array(f.buffer, f.byteOffset, f.byteLength));
  }
  return `sha256:${h.hex()}`;
}

/** Returns the first 16 hex digits of a fingerprint, enough to tell two apart in a message. */
export function shortFingerprint(fp: string): string {
  return fp.replace(/^sha256:/, "").slice(0, 16);
}

/**
 * Returns nothing; throws when `file`'s fingerprint `actual` differs from the one config.json
 * recorded (`recorded`; undefined for checkpoints made before fingerprints, which pass).
 */
export function checkFingerprint(
  file: string,
  configPath: string,
  recorded: unknown,
  actual: string,
): void {
  if (recorded === undefined) return;
  if (typeof recorded !== "string") {
    throw new Error(`${configPath}: field "fingerprints" must map file names to strings`);
  }
  if (recorded === actual) return;
  throw new Error(
    `${file}: does not belong to this checkpoint: its content (sha256 ${shortFingerprint(actual)}…) differs from what ${configPath} records (${shortFingerprint(recorded)}…); it was probably copied from another run — put back this run's own file`,
  );
}
