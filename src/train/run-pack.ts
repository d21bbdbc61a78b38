/**
 * `transfusion pack`: a run prepared exactly as `transfusion train` prepares it (data,
 * tokenizer, autoencoder, latents, the mixer), whose batches are written to disk instead of
 * trained on, for another trainer (python/train.py, on PyTorch's distributed engine) to train
 * from. The batch of step s is the one `transfusion train` draws at step s with the same
 * options, so both trainers see the same data. Timesteps and noise are left to the trainer:
 * each image records only the exclusive bound its timestep is drawn below (the noise cap for
 * captioning-like images). The folder also holds the run's step-0 checkpoint (the TypeScript
 * initialisation, config, tokenizer, autoencoder), which the other trainer starts from and whose
 * files it copies into its own checkpoints, so `generate`, `caption` and `eval` read them as
 * their own.
 *
 *   DIR/pack.json                  manifest (format, steps, rows, seqLen, latent shape, shards)
 *   DIR/checkpoint/                the step-0 checkpoint
 *   DIR/shards/shard-00000.safetensors …  `shardSize` steps each; step s's tensors are
 *       "s.tokens", "s.text_targets", "s.doc_ids", "s.positions"  I32 [B, T]
 *       "s.images"   I32 [N, 6]: row, start, gridH, gridW, diffuse (0/1), tMax
 *       "s.latents"  F32 [N, C, H, W] (the clean latents; [0] for the discrete-token model)
 *
 * Packing again with the same options keeps the shards already written (checked by their
 * metadata), so an interrupted pack resumes.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { cosineSchedule } from "../diffusion/schedule.js";
import { writeJson } from "../io/checkpoint.js";
import { Transfusion } from "../model/transfusion.js";
import { Rng } from "../tensor/rng.js";
import { readSafetensorsFile, writeSafetensorsFile } from "../tensor/safetensors.js";
import type { RunOptions } from "./run.js";
import { prepareRun } from "./run.js";
import { runSettings } from "./run-checks.js";
import { checkpointFilesWriter } from "./run-train.js";
import { stepSeed, Trainer } from "./trainer.js";

export const PACK_FORMAT = "transfusion-pack";
export const PACK_VERSION = 1;
export const PACK_FILE = "pack.json";

export interface PackOptions extends RunOptions {
  /** Steps per shard file. */
  shardSize: number;
}

export interface PackResult {
  dir: string;
  checkpoint: string;
  steps: number;
  shards: string[];
  /** Shards found complete from an earlier pack and kept. */
  kept: number;
  seconds: number;
}

/** The manifest `pack.json`. */
export interface PackManifest {
  format: typeof PACK_FORMAT;
  version: typeof PACK_VERSION;
  steps: number;
  rows: number;
  seqLen: number;
  /** Seed of the batches (the run's training seed: step s is drawn from stepSeed(seed, s, 1)). */
  seed: number;
  /** One image latent: [channels, side, side]; [] for the discrete-token and text-only models. */
  latentShape: number[];
  /** Diffusion steps T: the bound of every timestep. */
  diffusionSteps: number;
  checkpoint: string;
  shards: Array<{ file: string; first: number; count: number }>;
}

/** Returns what was written after packing `o.train.steps` batches of the run `o` into o.out. */
export async function packRun(o: PackOptions): Promise<PackResult> {
  if (!Number.isInteger(o.shardSize) || o.shardSize < 1) {
    throw new Error(`--shard-size must be an integer ≥ 1, got ${o.shardSize}`);
  }
  const emit = o.onEvent ?? (() => {});
  const s = await prepareRun(o);
  const settings = runSettings(o);
  const { config } = s;

  // The step-0 checkpoint: the same initialisation `transfusion train` starts from.
  if (!s.existing) {
    const trainer = new Trainer({
      model: new Transfusion(config, new Rng(settings.seed)),
      settings,
      schedule: cosineSchedule({ T: config.diffusionSteps }),
      batchFor: () => {
        throw new Error("pack: the step-0 checkpoint draws no batch");
      },
      checkpointDir: s.ckptDir,
      writeStatic: checkpointFilesWriter(o, s, settings),
    });
    trainer.save();
    emit({ kind: "file", what: "checkpoint", path: s.ckptDir });
  }

  const steps = settings.steps;
  const shardDir = join(s.out, "shards");
  mkdirSync(shardDir, { recursive: true });
  const manifest: PackManifest = {
    format: PACK_FORMAT,
    version: PACK_VERSION,
    steps,
    rows: o.rows,
    seqLen: o.seqLen,
    seed: settings.seed,
    latentShape:
      config.imageCodes > 0 || !s.ae
        ? []
        : [config.latentChannels, config.latentSize, config.latentSize],
    diffusionSteps: config.diffusionSteps,
    checkpoint: "checkpoint",
    shards: [],
  };
  const per = manifest.latentShape.reduce((a, b) => a * b, 1);
  const shards: string[] = [];
  let kept = 0;
  const t0 = Date.now();
  let written = 0;
  for (let first = 0; first < steps; first += o.shardSize) {
    const count = Math.min(o.shardSize, steps - first);
    const name = `shard-${String(first / o.shardSize).padStart(5, "0")}.safetensors`;
    const path = join(shardDir, name);
    manifest.shards.push({ file: `shards/${name}`, first, count });
    shards.push(path);
    const meta = {
      format: PACK_FORMAT,
      first: String(first),
      count: String(count),
      seed: String(settings.seed),
      rows: String(o.rows),
      seq_len: String(o.seqLen),
    };
    if (shardComplete(path, meta)) {
      kept++;
      continue;
    }
    const tensors: Record<string, { shape: number[]; data: Float32Array | Int32Array }> = {};
    for (let step = first; step < first + count; step++) {
      const { layout, latents } = s.batchFor(new Rng(stepSeed(settings.seed, step, 1)));
      const shape = [layout.batch, layout.seqLen];
      tensors[`${step}.tokens`] = { shape, data: layout.tokens };
      tensors[`${step}.text_targets`] = { shape, data: layout.textTargets };
      tensors[`${step}.doc_ids`] = { shape, data: layout.docIds };
      tensors[`${step}.positions`] = { shape, data: layout.positions };
      const images = new Int32Array(layout.images.length * 6);
      layout.images.forEach((img, k) => {
        images.set(
          [
            img.row,
            img.start,
            img.gridH,
            img.gridW,
            img.diffuse ? 1 : 0,
            img.tMax ?? config.diffusionSteps,
          ],
          k * 6,
        );
      });
      tensors[`${step}.images`] = { shape: [layout.images.length, 6], data: images };
      tensors[`${step}.latents`] = {
        shape: per > 0 ? [layout.images.length, ...manifest.latentShape] : [0],
        data: per > 0 ? latents : new Float32Array(0),
      };
      written++;
      const seconds = (Date.now() - t0) / 1000;
      const total = steps - kept * o.shardSize;
      emit({
        kind: "progress",
        stage: "pack",
        done: written,
        total,
        etaSeconds: (seconds / written) * Math.max(0, total - written),
      });
    }
    writeSafetensorsFile(path, tensors, meta);
  }
  writeJson(join(s.out, PACK_FILE), manifest);
  return {
    dir: s.out,
    checkpoint: s.ckptDir,
    steps,
    shards,
    kept,
    seconds: (Date.now() - t0) / 1000,
  };
}

/** Returns true when the shard at `path` exists and was written for these steps and seed. */
function shardComplete(path: string, meta: Record<string, string>): boolean {
  if (!existsSync(path)) return false;
  try {
    const m = readSafetensorsFile(path).metadata;
    return Object.entries(meta).every(([k, v]) => m[k] === v);
  } catch {
    return false;
  }
}
