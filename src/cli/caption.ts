/** `transfusion caption`: write a caption for each image with a trained checkpoint. */
import type { Command } from "commander";
import type { Image } from "../data/image.js";
import { readImageConverted } from "../data/image-channels.js";
import { TransfusionPipeline } from "../generate/pipeline.js";
import { parseInteger } from "./args.js";
import { addCheckpointFlag, addRunFlags, checkpointOrShipped } from "./flags.js";
import { printJson } from "./output.js";

export function registerCaption(program: Command): void {
  const cmd = program
    .command("caption")
    .description("write a caption for each image with a trained checkpoint")
    .argument(
      "<images...>",
      "PNG or JPEG files (colour is converted to grey for a grey model, and grey to colour)",
    );
  addCheckpointFlag(cmd, { shipped: true }).option(
    "--max-tokens <n>",
    "longest caption in tokens",
    (v) => parseInteger(v, "--max-tokens", 1),
    32,
  );
  addRunFlags(cmd).action(async (paths: string[], o) => {
    const p = TransfusionPipeline.load(checkpointOrShipped(o.checkpoint));
    const size = p.config.latentSize * p.vae.downsampleFactor;
    const channels = p.vae.config.imageChannels as 1 | 3;
    const images: Image[] = [];
    for (const f of paths) {
      const { image, fileChannels } = await readImageConverted(f, { channels, size });
      // Converting is lossy for colour → grey, so the user hears about it (one line each).
      if (fileChannels !== channels) {
        process.stderr.write(
          channels === 1
            ? `note: ${f} is in colour; converted to grey (luminance) for this greyscale model\n`
            : `note: ${f} is greyscale; its grey channel is repeated as RGB for this colour model\n`,
        );
      }
      images.push(image);
    }
    const texts = await p.caption(images, o.maxTokens);
    if (o.json) printJson({ captions: paths.map((f, i) => ({ file: f, caption: texts[i] })) });
    else
      paths.forEach((f, i) => {
        console.log(`${f}: ${texts[i]}`);
      });
  });
}
