/**
 * `transfusion generate`: draw images for one or more captions with a trained checkpoint. Each
 * image is a PNG named by prompt index and seed, carrying its settings as PNG text, and
 * `generate.json` lists them; files of an earlier `generate` in the folder are replaced.
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { renderImageGrid } from "../data/grid.js";
import { encodePng, type Image, writeFileAtomic } from "../data/image.js";
import { addPngText } from "../data/png-text.js";
import { TransfusionPipeline } from "../generate/pipeline.js";
import { parseInteger } from "./args.js";
import {
  addAlias,
  addCheckpointFlag,
  addRunFlags,
  addSamplingFlags,
  checkpointOrShipped,
  imageOptions,
} from "./flags.js";
import { removePrevious, writeManifest } from "./manifest.js";
import { printJson } from "./output.js";
import { stageProgress } from "./progress.js";
import { version } from "./version.js";

export const GENERATE_MANIFEST = "generate.json";

/** Returns the captions of a --prompts file: one per line, blank lines skipped. */
export function readPrompts(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new Error(`--prompts ${file}: cannot read (${(err as NodeJS.ErrnoException).code})`);
  }
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "");
  if (lines.length === 0) throw new Error(`--prompts ${file}: no captions (one per line)`);
  return lines;
}

/** Returns the PNG bytes of an image with `text` stored as PNG text chunks. */
export async function pngWithText(img: Image, text: Record<string, string>): Promise<Uint8Array> {
  return addPngText(await encodePng(img), text);
}

/** Returns the settings an image is drawn with, as its PNG and the manifest record them. */
export function settingsRecord(
  p: TransfusionPipeline,
  checkpoint: string,
  o: { sampler: string; sampleSteps: number; guidance: number; x0Clip: number },
) {
  return {
    checkpoint,
    // A flow-objective model always samples with flow-euler, whatever was asked.
    sampler: p.config.objective === "flow" ? "flow-euler" : o.sampler,
    sampleSteps: o.sampleSteps,
    guidance: o.guidance,
    x0Clip: o.x0Clip,
  };
}

/** Returns the PNG text chunks for one image: its prompt, seed and settings. */
export function pngText(
  prompt: string,
  seed: number,
  s: ReturnType<typeof settingsRecord>,
): Record<string, string> {
  return {
    prompt,
    seed: String(seed),
    sampler: s.sampler,
    "sample-steps": String(s.sampleSteps),
    guidance: String(s.guidance),
    "x0-clip": String(s.x0Clip),
    checkpoint: s.checkpoint,
    Software: `transfusion ${version()}`,
  };
}

export function registerGenerate(program: Command): void {
  const cmd = program
    .command("generate")
    .description(
      "draw images from captions (text-to-image): one PNG per caption and seed, named <prompt>-s<seed>.png, listed in generate.json",
    )
    .argument(
      "[captions...]",
      'prompts, e.g. "a small red circle on the left" ("" draws unconditionally)',
    );
  addCheckpointFlag(cmd, { shipped: true })
    .option(
      "--prompts <file>",
      "a text file of captions, one per line (after any given as arguments)",
    )
    .option(
      "--count <n>",
      "images per caption, with consecutive seeds from --seed",
      (v) => parseInteger(v, "--count", 1),
      1,
    );
  addSamplingFlags(cmd);
  addAlias(cmd, "--sample-steps", "--steps");
  cmd.option(
    "--out <dir>",
    "output folder; the files an earlier generate wrote there (listed in its generate.json) are replaced",
    "generated",
  );
  addRunFlags(cmd).action(async (args: string[], o) => {
    const captions = [...args, ...(o.prompts ? readPrompts(o.prompts) : [])];
    if (captions.length === 0)
      throw new Error('generate: give a caption (e.g. "a red circle") or --prompts FILE');
    const checkpoint = checkpointOrShipped(o.checkpoint);
    const p = TransfusionPipeline.load(checkpoint);
    const settings = settingsRecord(p, checkpoint, o);
    const jobs = captions.flatMap((prompt, promptIndex) =>
      Array.from({ length: o.count as number }, (_, k) => ({
        prompt,
        promptIndex,
        seed: (o.seed as number) + k,
        file: `${String(promptIndex).padStart(3, "0")}-s${(o.seed as number) + k}.png`,
      })),
    );
    const stage = stageProgress(Boolean(o.json));
    // One call per image, each as sample 0 of its seed, so that `NNN-sK.png` is exactly
    // what `generate "<caption>" --seed K` draws on its own.
    const images: Image[] = [];
    for (const [j, job] of jobs.entries()) {
      const { images: drawn } = await p.textToImage([job.prompt], {
        ...imageOptions(o),
        seed: job.seed,
        onImageStep: (_row, step, steps) =>
          stage(`drawing image ${j + 1}/${jobs.length}`, step, steps),
      });
      images.push(drawn[0]!);
    }

    const out = resolve(o.out);
    removePrevious(out, GENERATE_MANIFEST);
    const files: string[] = [];
    for (const [j, job] of jobs.entries()) {
      const bytes = await pngWithText(images[j]!, pngText(job.prompt, job.seed, settings));
      await writeFileAtomic(join(out, job.file), bytes);
      files.push(job.file);
    }
    let grid: string | null = null;
    if (images.length > 1) {
      grid = "grid.png";
      const captionsUnder = jobs.map((j) => `${j.prompt || "(none)"} s${j.seed}`);
      const sheet = renderImageGrid(images, {
        columns: Math.min(8, images.length),
        captions: captionsUnder,
      });
      await writeFileAtomic(join(out, grid), await encodePng(sheet));
      files.push(grid);
    }
    const manifest = await writeManifest(out, GENERATE_MANIFEST, {
      ...settings,
      count: o.count,
      images: jobs.map(({ file, prompt, promptIndex, seed }) => ({
        file,
        prompt,
        promptIndex,
        seed,
      })),
      grid,
      files,
    });
    const paths = files.map((f) => join(out, f));
    if (o.json) printJson({ out, manifest, files: paths, images: jobs });
    else for (const f of [...paths, manifest]) console.log(f);
  });
}
