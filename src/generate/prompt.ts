/**
 * Prompts as the model saw text in training. The tokenizer itself changes nothing (every
 * string encodes), so a prompt typed with other case or spacing than the training captions
 * becomes tokens the model rarely or never saw. The built-in datasets' captions are lowercase,
 * single-spaced and trimmed (shapes, MNIST and Fashion-MNIST are generated that way, emoji
 * names are lowercased and their whitespace collapsed), and the text corpora are NFC with runs
 * of spaces made one (data/datasets/text-corpus.ts). No files here: a web page uses it too.
 */
import { preTokenize } from "../data/byte-level.js";
import type { BpeTokenizer } from "../data/tokenizer-core.js";

/**
 * The built-in image–caption datasets, whose captions are all lowercase (the list is checked
 * against DATASET_NAMES by test/web/prompt.test.ts, so a new dataset must be placed here).
 */
export const LOWERCASE_CAPTION_DATASETS: readonly string[] = [
  "shapes",
  "mnist",
  "fashion-mnist",
  "emoji",
];

/** How prompts for a checkpoint are normalised. */
export interface PromptStyle {
  /** Lower-case the prompt: the model only ever saw lowercase captions. */
  lowercase: boolean;
}

/**
 * Returns the prompt style of a checkpoint from its config.json, for a caption (text-to-image)
 * or the start of a document (continuation): lowercase when the model was trained on a
 * built-in dataset, except for documents when a text corpus (which keeps its case) was mixed
 * in; case kept for a document file, whose text may use any case.
 */
export function promptStyle(
  checkpointConfig: Readonly<Record<string, unknown>> | null,
  kind: "caption" | "document",
): PromptStyle {
  const data = checkpointConfig?.data;
  const builtIn = typeof data === "string" && LOWERCASE_CAPTION_DATASETS.includes(data);
  const run = checkpointConfig?.run as { textCorpus?: unknown } | undefined;
  const corpus = typeof run?.textCorpus === "string";
  return { lowercase: builtIn && (kind === "caption" || !corpus) };
}

/**
 * Returns `text` as training text looked: Unicode composed (NFC), every run of whitespace made
 * one space, trimmed, and lowercased when `style.lowercase`.
 */
export function normalisePrompt(text: string, style: PromptStyle): string {
  const t = text.normalize("NFC").replace(/\s+/gu, " ").trim();
  return style.lowercase ? t.toLowerCase() : t;
}

/**
 * Returns the words of `text` (letters or digits; in order, each once) that are not one token
 * of the vocabulary with their leading space. Byte-level BPE learns a merged token for every
 * frequent word, so a word that the tokenizer must spell in pieces was rare or absent in its
 * training text, and the model knows little about it.
 */
export function unseenWords(tokenizer: BpeTokenizer, text: string): string[] {
  const out: string[] = [];
  for (const piece of preTokenize(` ${text}`)) {
    const word = piece.trim();
    if (!/[\p{L}\p{N}]/u.test(word) || out.includes(word)) continue;
    if (tokenizer.encode(piece).length > 1) out.push(word);
  }
  return out;
}
