/**
 * `transfusion complete`: continue a prompt with text and images (interleaved generation).
 * The text goes to stdout, each image to a PNG in --out, and `complete.json` lists the parts
 * in order; files of an earlier `complete` in the folder are replaced.
 */
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { writeFileAtomic } from "../data/image.js";
import { TransfusionPipeline } from "../generate/pipeline.js";
import { parseInteger, parseNonNegativeNumber, parsePositiveNumber } from "./args.js";
import {
  addCheckpointFlag,
  addRunFlags,
  addSamplingFlags,
  checkpointOrShipped,
  imageOptions,
} from "./flags.js";
import { pngText, pngWithText, settingsRecord } from "./generate.js";
import { removePrevious, writeManifest } from "./manifest.js";
import { printJson } from "./output.js";
import { stageProgress } from "./progress.js";

export const COMPLETE_MANIFEST = "complete.json";

export function registerComplete(program: Command): void {
  const cmd = program
    .command("complete")
    .description(
      "continue a prompt with text and images: text to stdout, images as PNGs in --out, complete.json listing the parts in order",
    )
    .argument("<prompt>", 'the start of a document, e.g. "first a red square:"');
  addCheckpointFlag(cmd, { shipped: true })
    .option(
      "--max-tokens <n>",
      "new text tokens at most (images not counted)",
      (v) => parseInteger(v, "--max-tokens", 1),
      64,
    )
    .option(
      "--max-images <n>",
      "images at most (0: text only)",
      (v) => parseInteger(v, "--max-images", 0),
      2,
    )
    .option(
      "--temperature <t>",
      "text sampling temperature (≥ 0; 0 picks the likeliest token)",
      (v) => parseNonNegativeNumber(v, "--temperature"),
      0.8,
    )
    .option(
      "--top-k <k>",
      "sample among the k likeliest tokens (0: all)",
      (v) => parseInteger(v, "--top-k", 0),
      0,
    )
    .option(
      "--top-p <p>",
      "sample from the likeliest tokens whose probabilities reach p (0 < p ≤ 1; 1: all)",
      (v) => parsePositiveNumber(v, "--top-p", 1),
      0.95,
    );
  addSamplingFlags(cmd);
  cmd.option(
    "--out <dir>",
    "folder for the images and complete.json; the files an earlier complete wrote there are replaced",
    "completion",
  );
  addRunFlags(cmd).action(async (prompt: string, o) => {
    const checkpoint = checkpointOrShipped(o.checkpoint);
    const p = TransfusionPipeline.load(checkpoint);
    const settings = settingsRecord(p, checkpoint, o);
    const stage = stageProgress(Boolean(o.json));
    const parts = await p.generate(
      { parts: [{ text: prompt }] },
      {
        ...imageOptions(o),
        sampling: { temperature: o.temperature, topK: o.topK, topP: o.topP },
        maxNewTokens: o.maxTokens,
        maxImages: o.maxImages,
        onImageStep: (_row, step, steps) => stage("drawing an image", step, steps),
      },
    );

    const out = resolve(o.out);
    removePrevious(out, COMPLETE_MANIFEST);
    const files: string[] = [];
    const listed: Array<{ text: string } | { image: string }> = [];
    for (const part of parts) {
      if (part.image) {
        const file = `image-${String(files.length).padStart(3, "0")}.png`;
        const bytes = await pngWithText(part.image, pngText(prompt, o.seed, settings));
        await writeFileAtomic(join(out, file), bytes);
        files.push(file);
        listed.push({ image: file });
      } else listed.push({ text: part.text ?? "" });
    }
    const manifest = await writeManifest(out, COMPLETE_MANIFEST, {
      prompt,
      ...settings,
      seed: o.seed,
      temperature: o.temperature,
      topK: o.topK,
      topP: o.topP,
      maxTokens: o.maxTokens,
      maxImages: o.maxImages,
      parts: listed,
      files,
    });
    if (o.json) {
      const absolute = listed.map((q) => ("image" in q ? { image: join(out, q.image) } : q));
      printJson({ out, manifest, parts: absolute });
      return;
    }
    // The continuation as one text, each image as a marker line naming its file.
    const text = listed
      .map((q) => ("image" in q ? `\n[image: ${join(out, q.image)}]\n` : q.text))
      .join("");
    process.stdout.write(`${text}\n`);
  });
}
