/** `transfusion vae …`: train the image VAE and measure its reconstructions. */
import type { Command } from "commander";
import { DATASET_NAMES, getDataset } from "../data/datasets/index.js";
import { loadVae } from "../io/vae-files.js";
import { groupsFor } from "../nn/layers.js";
import {
  type ReconLoss,
  reconstructionPsnr,
  trainVae,
  VAE_TRAIN_DEFAULTS,
} from "../train/vae-train.js";
import {
  parseChoice,
  parseDataName,
  parseInteger,
  parseNonNegativeNumber,
  trainingFlagOptions,
} from "./args.js";
import { addAlias, addRunFlags, addTrainerFlags } from "./flags.js";
import { fmt, printJson, table } from "./output.js";
import { stageProgress } from "./progress.js";

export function registerVae(program: Command): void {
  const vae = program
    .command("vae")
    .description("train and evaluate the image VAE (the latent space diffusion runs in)");
  const train = vae
    .command("train")
    .description(
      "train a VAE on a dataset, write DIR/vae.safetensors, vae.json and reconstruction grids",
    )
    .requiredOption("--data <name>", `dataset: ${DATASET_NAMES.join(", ")}`, parseDataName)
    .requiredOption("--out <dir>", "output folder")
    .option("--kl-weight <x>", `KL weight (default ${VAE_TRAIN_DEFAULTS.klWeight})`, (v) =>
      parseNonNegativeNumber(v, "--kl-weight"),
    )
    .option(
      "--recon <loss>",
      `reconstruction loss l1 or l2 (default ${VAE_TRAIN_DEFAULTS.recon})`,
      (v) => parseChoice(v, "--recon", ["l1", "l2"] as const),
    )
    .option("--width <n>", "base channel width (default 32)", (v) => parseInteger(v, "--width", 1))
    .option("--levels <n>", "downsamplings: latent is 2^levels smaller per side (default 2)", (v) =>
      parseInteger(v, "--levels", 1),
    )
    .option("--latent-channels <n>", "latent channels (default 4)", (v) =>
      parseInteger(v, "--latent-channels", 1),
    );
  addTrainerFlags(train, VAE_TRAIN_DEFAULTS, { grid: true });
  addRunFlags(train, { quiet: true }).action(async (o) => {
    const stage = stageProgress(Boolean(o.quiet));
    const config = {
      ...(o.width !== undefined ? { baseChannels: o.width, groups: groupsFor(o.width) } : {}),
      ...(o.levels !== undefined ? { levels: o.levels } : {}),
      ...(o.latentChannels !== undefined ? { latentChannels: o.latentChannels } : {}),
    };
    const r = await trainVae({
      data: o.data,
      outDir: o.out,
      config,
      ...trainingFlagOptions(o),
      ...(o.klWeight !== undefined ? { klWeight: o.klWeight } : {}),
      ...(o.recon !== undefined ? { recon: o.recon as ReconLoss } : {}),
      onProgress: (p) =>
        stage(
          "training the VAE",
          p.step,
          p.steps,
          p.etaSeconds,
          `loss ${fmt(p.loss, 4)}  recon ${fmt(p.recon, 4)}  kl ${fmt(p.kl, 2)}  lr ${p.lr.toExponential(1)}`,
        ),
    });
    const summary = {
      psnr: r.psnr,
      steps: r.steps,
      seconds: r.seconds,
      scalingFactor: r.vae.scalingFactor,
      shiftFactor: r.vae.shiftFactor,
      files: r.files,
    };
    if (o.json) {
      printJson(summary);
      return;
    }
    console.log(
      table([
        ["held-out PSNR", `${fmt(r.psnr, 2)} dB`],
        ["steps", `${r.steps} in ${fmt(r.seconds, 1)} s`],
        ["final recon / KL", `${fmt(r.finalRecon, 4)} / ${fmt(r.finalKl, 3)}`],
        ["scaling factor", `${fmt(r.vae.scalingFactor, 4)} (shift ${fmt(r.vae.shiftFactor, 4)})`],
        ["files", r.files.join("\n" + " ".repeat(18))],
      ]),
    );
  });

  const evaluate = vae
    .command("eval")
    .description("report the held-out reconstruction PSNR of a trained VAE")
    .requiredOption("--vae <dir>", "folder holding vae.safetensors")
    .requiredOption("--data <name>", `dataset: ${DATASET_NAMES.join(", ")}`, parseDataName)
    .option("--count <n>", "held-out images to use (default 1000)", (v) =>
      parseInteger(v, "--count", 1),
    );
  addAlias(evaluate, "--count", "--images");
  addRunFlags(evaluate).action(async (o) => {
    const model = loadVae(o.vae);
    const ds = await getDataset(o.data);
    if (ds.channels !== model.config.imageChannels) {
      throw new Error(
        `${o.vae}: the VAE reads ${model.config.imageChannels}-channel images but ${o.data} has ${ds.channels}`,
      );
    }
    const test = ds.split("test");
    const n = Math.min(o.count ?? 1000, test.size);
    const started = performance.now();
    const psnr = reconstructionPsnr(
      model,
      Array.from({ length: n }, (_, i) => test.get(i).image),
    );
    const seconds = (performance.now() - started) / 1000;
    if (o.json) {
      printJson({ psnr, images: n, seconds });
      return;
    }
    console.log(table([["held-out PSNR", `${fmt(psnr, 2)} dB over ${n} ${o.data} test images`]]));
  });
}
