/**
 * The tokenizer of the package in Node: the byte-level BPE tokenizer of `./tokenizer-core.ts`
 * (which runs in a browser too; its header explains the text handling), plus reading and
 * writing its Hugging Face `tokenizer.json` file.
 */
import { readFileSync } from "node:fs";
import { writeFileAtomic } from "../tensor/atomic-write.js";
import { BpeTokenizer } from "./tokenizer-core.js";

export {
  BpeTokenizer,
  type EncodeOptions,
  type HfTokenizerJson,
  MAX_VOCAB_SIZE,
  SPECIAL_TOKENS,
  type TokenizerParts,
} from "./tokenizer-core.js";

export class Tokenizer extends BpeTokenizer {
  /** Returns the tokenizer stored in the `tokenizer.json` file at `path`. */
  static load(path: string): Tokenizer {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (err) {
      throw new Error(`${path}: cannot read tokenizer: ${(err as Error).message}`, { cause: err });
    }
    return Tokenizer.fromText(text, path);
  }

  /** Returns nothing; writes `tokenizer.json` to `path` atomically. */
  save(path: string): void {
    writeFileAtomic(path, [new TextEncoder().encode(this.toText())]);
  }
}
