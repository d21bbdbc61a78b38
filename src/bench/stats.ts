/** Bench helpers: medians of repeated runs on a noisy machine, RSS, the reported model shape. */
import type { TransfusionConfig } from "../model/config.js";

/** Returns the median of a non-empty list. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new Error("median of an empty list");
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Returns seconds elapsed while running fn. */
export function timeSeconds(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/** Returns seconds elapsed until fn's promise settles. */
export async function timeSecondsAsync(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/** Returns the peak resident set size of this process so far, in MB. */
export function peakRssMb(): number {
  return process.resourceUsage().maxRSS / 1024;
}

/** Returns the current resident set size in MB. */
export function rssMb(): number {
  return process.memoryUsage.rss() / (1024 * 1024);
}

/** Returns the fields of a model config that a bench reports as its shape. */
export function modelShape(config: TransfusionConfig) {
  return {
    dim: config.dim,
    layers: config.layers,
    heads: config.heads,
    vocab: config.vocab,
    latentChannels: config.latentChannels,
    latentSize: config.latentSize,
    patchSize: config.patchSize,
    mlpHidden: config.mlpHidden,
    encoder: config.encoder,
  };
}
