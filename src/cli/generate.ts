/** `transfusion generate` and `transfusion caption`: use a trained checkpoint. */
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { writeImageGrid } from "../data/grid.js";
import { readImage, writePng } from "../data/image.js";
import { DEFAULT_IMAGE_OPTIONS, TransfusionPipeline } from "../generate/pipeline.js";
import { setBackend } from "../tensor/backends/index.js";
import {
  parseBackend,
  parseNonNegativeInt,
  parseNumber,
  parsePositiveInt,
  parseSampler,
} from "./args.js";
import { endProgress, printJson, progressLine } from "./output.js";

export function registerGenerate(program: Command): void {
  program
    .command("generate")
    .description("draw images from a caption (text-to-image) with a trained checkpoint")
    .argument(
      "<caption>",
      'the prompt, e.g. "a small red circle on the left" ("" for unconditional)',
    )
    .requiredOption("--checkpoint <dir>", "checkpoint folder (a run's checkpoint/)")
    .option("--count <n>", "images to draw", (v) => parsePositiveInt(v, "--count"), 1)
    .option(
      "--sampler <name>",
      "ddpm (respaced, default) | ddim | flow-euler",
      parseSampler,
      "ddpm",
    )
    .option(
      "--steps <n>",
      "denoising steps (the paper uses 250 DDPM steps)",
      (v) => parsePositiveInt(v, "--steps"),
      DEFAULT_IMAGE_OPTIONS.steps,
    )
    .option(
      "--guidance <s>",
      "classifier-free guidance scale; 0 for none",
      (v) => parseNumber(v, "--guidance"),
      DEFAULT_IMAGE_OPTIONS.guidanceScale ?? 0,
    )
    .option("--seed <n>", "random seed", (v) => parseNonNegativeInt(v, "--seed"), 0)
    .option(
      "--x0-clip <c>",
      "clip predicted clean latents to ±c each step; 0 for none",
      (v) => parseNumber(v, "--x0-clip"),
      DEFAULT_IMAGE_OPTIONS.x0Clip ?? 0,
    )
    .option("--out <dir>", "output folder", "generated")
    .option("--backend <name>", "js or native")
    .option("--json", "print one JSON object on the last line")
    .action(async (caption: string, o) => {
      const be = parseBackend(o.backend);
      if (be) setBackend(be);
      const p = TransfusionPipeline.load(o.checkpoint);
      const progress = progressLine(Boolean(o.json));
      const captions = Array.from({ length: o.count }, () => caption);
      const { images } = p.textToImage(captions, {
        sampler: o.sampler,
        steps: o.steps,
        guidanceScale: o.guidance > 0 ? o.guidance : null,
        seed: o.seed,
        x0Clip: o.x0Clip > 0 ? o.x0Clip : null,
        onImageStep: (row, step, steps) => {
          if (row === 0) progress(`denoising ${step}/${steps}`);
        },
      });
      endProgress();
      const out = resolve(o.out);
      mkdirSync(out, { recursive: true });
      const files: string[] = [];
      for (let i = 0; i < images.length; i++) {
        const f = join(out, `image-${String(i).padStart(3, "0")}.png`);
        await writePng(f, images[i]!);
        files.push(f);
      }
      let grid: string | null = null;
      if (images.length > 1) {
        grid = join(out, "grid.png");
        await writeImageGrid(grid, images, { columns: Math.min(8, images.length) });
      }
      if (o.json) printJson({ caption, files, grid });
      else {
        for (const f of files) console.log(f);
        if (grid) console.log(grid);
      }
    });

  program
    .command("caption")
    .description("write a caption for each image with a trained checkpoint")
    .argument("<images...>", "PNG or JPEG files")
    .requiredOption("--checkpoint <dir>", "checkpoint folder (a run's checkpoint/)")
    .option(
      "--max-tokens <n>",
      "longest caption in tokens",
      (v) => parsePositiveInt(v, "--max-tokens"),
      32,
    )
    .option("--backend <name>", "js or native")
    .option("--json", "print one JSON object on the last line")
    .action(async (paths: string[], o) => {
      const be = parseBackend(o.backend);
      if (be) setBackend(be);
      const p = TransfusionPipeline.load(o.checkpoint);
      const size = p.config.latentSize * p.vae.downsampleFactor;
      const channels = p.vae.config.imageChannels as 1 | 3;
      const images = [];
      for (const f of paths) images.push(await readImage(f, { channels, size }));
      const texts = p.caption(images, o.maxTokens);
      if (o.json) printJson({ captions: paths.map((f, i) => ({ file: f, caption: texts[i] })) });
      else
        paths.forEach((f, i) => {
          console.log(`${f}: ${texts[i]}`);
        });
    });
}
