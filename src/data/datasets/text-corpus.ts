/**
 * Shared plumbing of the text corpora: moderate whitespace normalisation and a corpus whose
 * held-out split is fixed by a rule over whole units, so it never changes between runs.
 */
import { checkSplitName, type SplitName, type TextCorpus, type TextSplit } from "./types.js";

/**
 * Returns the text with Unicode composed (NFC), line endings as \n, runs of spaces and tabs
 * made one space, lines trimmed and runs of blank lines cut to one. Punctuation, case and
 * single line breaks stay: they are part of what a language model should learn.
 */
export function normaliseWhitespace(text: string): string {
  return text
    .normalize("NFC")
    .replace(/\r\n?/g, "\n")
    .replace(/[ \t\f\v\u00a0]+/g, " ")
    .split("\n")
    .map((line) => line.trim())
    .join("\n")
    .replace(/\n{3,}/g, "\n\n")
    .trim();
}

/** Returns the non-empty paragraphs (blocks separated by blank lines) of normalised text. */
export function paragraphs(text: string): string[] {
  return normaliseWhitespace(text)
    .split("\n\n")
    .filter((p) => p.length > 0);
}

/** A run of units (a chapter, a speech) that goes to one split as a whole. */
export interface TextBlock {
  units: string[];
  heldOut: boolean;
}

/**
 * Returns a corpus over units grouped in blocks; whole blocks go to one split so held-out
 * text never sits in the middle of training text. Blocks are read on the first `split` call.
 */
export function blockCorpus(
  name: string,
  licence: string,
  readBlocks: () => TextBlock[],
): TextCorpus {
  let splits: Record<SplitName, TextSplit> | null = null;
  const build = (): Record<SplitName, TextSplit> => {
    const units: Record<SplitName, string[]> = { train: [], test: [] };
    for (const block of readBlocks()) units[block.heldOut ? "test" : "train"].push(...block.units);
    const make = (list: string[]): TextSplit => ({ units: list, text: list.join("\n\n") });
    return { train: make(units.train), test: make(units.test) };
  };
  return {
    name,
    licence,
    split(splitName: SplitName): TextSplit {
      const split = checkSplitName(name, splitName);
      splits ??= build();
      return splits[split];
    },
  };
}
