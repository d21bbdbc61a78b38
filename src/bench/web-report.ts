/**
 * The figures `transfusion bench web` reports (./web.ts): what the page was set to, the medians
 * of each place the work ran (the page, Node js, Node native), and browser ÷ Node ratios.
 */
import { median } from "./stats.js";

/** What the page is set to when the bench starts, read from its controls. */
export interface WebBenchWorkload {
  caption: string;
  sampler: string;
  steps: number;
  guidance: number;
  previewEvery: number;
  /** The continued prompt as the page sent it (normalised). */
  prompt: string;
  maxTokens: number;
  temperature: number;
  seed: number;
  /** Text tokens each continuation samples (the end-of-document token included when sampled). */
  continuationTokens: number;
  repeats: number;
}

/** Medians of one place the work ran: the page or Node on one backend. */
export interface WebBenchTimes {
  /** Seconds per guided image (median). */
  imageSecondsGuided: number;
  /** Seconds per image with guidance 0 (median). */
  imageSeconds: number;
  /** Text tokens per second of the continuation, its prompt's prefill included (median). */
  textTokensPerSecond: number;
  /** Every timed run, in order. */
  runs: { imageSecondsGuided: number[]; imageSeconds: number[]; textSeconds: number[] };
}

/** Browser time ÷ Node time for the same work (> 1: the browser is slower). */
export interface WebBenchRatios {
  imageGuided: number;
  image: number;
  /** Seconds per text token. */
  text: number;
}

export interface WebBenchResult {
  /** The page's backend: the js kernels in one Web Worker. */
  backend: "js";
  threads: 1;
  /** The browser's name and version as it reports them. */
  browser: string;
  checkpoint: string;
  workload: WebBenchWorkload;
  /** Seconds from the start of navigation to the page saying the model is ready. */
  readySeconds: number;
  /** Seconds from the start of navigation to the first image (load included). */
  firstImageSeconds: number;
  browserTimes: WebBenchTimes;
  /** The same work in Node, per backend; null when not run (--backend, or native not built). */
  node: {
    js: (WebBenchTimes & { threads: number }) | null;
    native: (WebBenchTimes & { threads: number }) | null;
  };
  /** Browser ÷ Node js and browser ÷ native; null where Node did not run on that backend. */
  ratios: { vsNodeJs: WebBenchRatios | null; vsNative: WebBenchRatios | null };
}

/** Returns the medians of timed runs (tokens: of each continuation). */
export function times(runs: WebBenchTimes["runs"], tokens: number): WebBenchTimes {
  return {
    imageSecondsGuided: median(runs.imageSecondsGuided),
    imageSeconds: median(runs.imageSeconds),
    textTokensPerSecond: tokens / median(runs.textSeconds),
    runs,
  };
}

/** Returns browser ÷ Node times. */
export function ratios(browser: WebBenchTimes, node: WebBenchTimes | null): WebBenchRatios | null {
  if (node === null) return null;
  return {
    imageGuided: browser.imageSecondsGuided / node.imageSecondsGuided,
    image: browser.imageSeconds / node.imageSeconds,
    text: node.textTokensPerSecond / browser.textTokensPerSecond,
  };
}
