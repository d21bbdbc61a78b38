/**
 * `transfusion release`: a checkpoint made ready to ship — sampling weights and autoencoder in
 * half precision (F16 safetensors, half the bytes), no optimiser state — scored as shipped, with
 * a model card (MODEL_CARD.md and model-card.json) recording where it came from and how well it
 * does. The package's own model (models/demo) is made this way from `transfusion demo`'s run.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import type { Command } from "commander";
import { getDataset } from "../data/datasets/index.js";
import { evaluatePipeline } from "../eval/evaluate.js";
import { TransfusionPipeline } from "../generate/pipeline.js";
import { CONFIG_FILE, MODEL_FILE, readPipelineFiles, replaceFolder } from "../io/checkpoint.js";
import { parseCheckpointConfig, parseJson } from "../io/checkpoint-format.js";
import { autoencoderFingerprint } from "../io/integrity.js";
import { VAE_WEIGHTS_FILE } from "../io/vae-files.js";
import { vaeFromSafetensors } from "../io/vae-format.js";
import { VQVAE_WEIGHTS_FILE } from "../io/vqvae-files.js";
import { vqvaeFromSafetensors } from "../io/vqvae-format.js";
import { parseSafetensors, type StInput, serializeSafetensors } from "../tensor/safetensors.js";
import { parseInteger } from "./args.js";
import { type RunInfo, runInfo } from "./eval.js";
import { addCheckpointFlag, addRunFlags, checkpointFolder } from "./flags.js";
import { printJson } from "./output.js";
import { EVAL_LABELS, stageProgress } from "./progress.js";

export const MODEL_CARD_FILE = "MODEL_CARD.md";
export const MODEL_CARD_JSON = "model-card.json";

export interface ReleaseOptions {
  /** Held-out captions and images scored (shapes data: the pixel checker; captions: all data). */
  evalCount: number;
  /** How the checkpoint was made, recorded verbatim in the card (e.g. "npx transfusion demo"). */
  madeBy: string | null;
  onProgress?: (what: "images" | "captions" | "text", done: number, total: number) => void;
}

/** What the card records. */
export interface ModelCard {
  name: string;
  madeBy: string | null;
  data: { dataset: string; shapesDifficulty: string | null; textCorpus: string | null };
  model: Record<string, unknown>;
  parameters: number;
  training: { steps: number; seed: number | null; minutes: number | null };
  scores: {
    count: number;
    sampler: string;
    sampleSteps: number;
    guidance: number | null;
    seed: number;
    generationAccuracy: number | null;
    generationAllAttributes: number | null;
    captionAccuracy: number | null;
    captionExact: number | null;
    captionAllAttributes: number | null;
    noiseImages: number | null;
  };
  precision: "float16";
  bytes: number;
}

/**
 * Writes the release of the checkpoint at `from` (a run folder or a checkpoint folder) to `out`
 * and returns its model card. The weights are rounded to half precision first, and every
 * fingerprint and score is that of the rounded files, so the card describes what ships.
 */
export async function releaseCheckpoint(
  from: string,
  out: string,
  o: ReleaseOptions,
): Promise<ModelCard> {
  const dir = checkpointFolder(from);
  const files = readPipelineFiles(dir);
  const configPath = join(dir, CONFIG_FILE);
  const cfg = parseCheckpointConfig(parseJson(String(files[CONFIG_FILE]), configPath), configPath);
  const shipped: Record<string, Uint8Array | string> = { ...files };
  shipped[MODEL_FILE] = halfFile(files[MODEL_FILE] as Uint8Array, join(dir, MODEL_FILE));
  const raw = structuredClone(cfg.raw) as Record<string, unknown>;
  for (const ae of [VAE_WEIGHTS_FILE, VQVAE_WEIGHTS_FILE]) {
    if (!(ae in files)) continue;
    const bytes = halfFile(files[ae] as Uint8Array, join(dir, ae));
    shipped[ae] = bytes;
    const st = parseSafetensors(bytes, join(dir, ae));
    const module =
      ae === VAE_WEIGHTS_FILE ? vaeFromSafetensors(st, ae) : vqvaeFromSafetensors(st, ae);
    // The autoencoder's fingerprint is of its weights, which rounding changed.
    const fp = (raw.fingerprints ?? {}) as Record<string, string>;
    raw.fingerprints = { ...fp, [ae]: autoencoderFingerprint(module) };
  }
  // Relative to where the command ran, so a release names no path of the machine that made it.
  raw.release = { precision: "float16", from: relative(process.cwd(), dir) };
  shipped[CONFIG_FILE] = `${JSON.stringify(raw, null, 2)}\n`;

  // Scored as shipped: the pipeline is built from the rounded files, through every load check.
  const pipe = TransfusionPipeline.fromFiles(shipped, { source: out });
  const card = await scoreCard(pipe, raw, runInfo(dir), dir, from, o);
  const sizes = Object.values(shipped).map((v) =>
    typeof v === "string" ? Buffer.byteLength(v) : v.byteLength,
  );
  card.bytes = sizes.reduce((a, b) => a + b, 0);

  replaceFolder(out, (tmp) => {
    for (const [name, v] of Object.entries(shipped)) writeFileSync(join(tmp, name), v);
    writeFileSync(join(tmp, MODEL_CARD_JSON), `${JSON.stringify(card, null, 2)}\n`);
    writeFileSync(join(tmp, MODEL_CARD_FILE), modelCardMarkdown(card));
  });
  return card;
}

/** Returns a safetensors file with every float tensor of `bytes` stored as F16 (metadata kept). */
function halfFile(bytes: Uint8Array, source: string): Uint8Array {
  const st = parseSafetensors(bytes, source);
  const tensors: Record<string, StInput> = {};
  for (const [name, t] of Object.entries(st.tensors)) {
    if (t.data instanceof Float32Array)
      tensors[name] = { shape: t.shape, data: t.data, half: true };
    else if (t.data instanceof Int32Array) tensors[name] = { shape: t.shape, data: t.data };
    else throw new Error(`${source}: tensor "${name}" (${t.dtype}) cannot be released`);
  }
  return serializeSafetensors(tensors, st.metadata);
}

/** Returns the card of the pipeline `pipe` (config.json `raw`), scored on its held-out data. */
async function scoreCard(
  pipe: TransfusionPipeline,
  raw: Record<string, unknown>,
  info: RunInfo,
  dir: string,
  from: string,
  o: ReleaseOptions,
): Promise<ModelCard> {
  const train = (raw.train ?? {}) as Record<string, unknown>;
  const run = (raw.run ?? {}) as Record<string, unknown>;
  // A demo run folder records its wall time beside the checkpoint.
  const summaryPath = [join(from, "summary.json"), join(dir, "..", "summary.json")].find(
    existsSync,
  );
  const summary = summaryPath
    ? (JSON.parse(readFileSync(summaryPath, "utf8")) as { minutes?: number })
    : {};
  const image = { sampler: "ddpm" as const, steps: 100, guidanceScale: 5, seed: 7 };
  const card: ModelCard = {
    name: `transfusion-${String(run.preset ?? "model")}-${info.data.replace(/\.jsonl$/, "")}${info.shapesDifficulty ? `-${info.shapesDifficulty}` : ""}`,
    madeBy: o.madeBy,
    data: {
      dataset: info.data,
      shapesDifficulty: info.shapesDifficulty,
      textCorpus: info.textCorpus,
    },
    model: raw.model as Record<string, unknown>,
    parameters: pipe.model.parameterCount(),
    training: {
      steps: Number(raw.step ?? 0),
      seed: typeof train.seed === "number" ? train.seed : null,
      minutes: typeof summary.minutes === "number" ? summary.minutes : null,
    },
    scores: {
      count: 0,
      sampler: image.sampler,
      sampleSteps: image.steps,
      guidance: image.guidanceScale,
      seed: image.seed,
      generationAccuracy: null,
      generationAllAttributes: null,
      captionAccuracy: null,
      captionExact: null,
      captionAllAttributes: null,
      noiseImages: null,
    },
    precision: "float16",
    bytes: 0,
  };
  // Documents from a file have no held-out split with labels to score against.
  if (o.evalCount === 0 || info.data.endsWith(".jsonl")) return card;
  const dataset = await getDataset(info.data, {
    imageSize: info.imageSize,
    ...(info.shapesDifficulty ? { difficulty: info.shapesDifficulty } : {}),
  });
  const ev = await evaluatePipeline(pipe, dataset, {
    count: Math.min(o.evalCount, dataset.split("test").size),
    batch: 25,
    image,
    textCorpus: null,
    classifier: null,
    skip: { imageLoss: true },
    ...(o.onProgress ? { onProgress: o.onProgress } : {}),
  });
  card.scores = {
    ...card.scores,
    count: ev.generated.length,
    // Judged in pixel space by the shapes checker; other data would need its classifier.
    generationAccuracy: ev.checkerAccuracy,
    generationAllAttributes: ev.checkerAllAttributes,
    captionAccuracy: ev.captionAccuracy,
    captionExact: ev.captionExact,
    captionAllAttributes: ev.captionAllAttributes,
    noiseImages: ev.noiseImages,
  };
  return card;
}

/** Returns the Markdown model card. */
export function modelCardMarkdown(c: ModelCard): string {
  const pct = (x: number | null) => (x === null ? "not measured" : `${(100 * x).toFixed(1)}%`);
  const d = c.data;
  return `# ${c.name}

A Transfusion model trained by this project's own code${c.madeBy ? ` with \`${c.madeBy}\`` : ""}.

- **Data**: \`${d.dataset}\`${d.shapesDifficulty ? ` (${d.shapesDifficulty})` : ""}, generated by the project; plain text: ${d.textCorpus ? `_${d.textCorpus}_` : "none"}.
- **Model**: ${c.parameters.toLocaleString("en-US")} parameters (width ${c.model.dim}, ${c.model.layers} layers, ${c.model.heads} heads, ${c.model.patchSize}×${c.model.patchSize} latent patches), stored in half precision (${(c.bytes / 1e6).toFixed(1)} MB with its VAE and tokenizer).
- **Training**: ${c.training.steps.toLocaleString("en-US")} steps, seed ${c.training.seed ?? "unknown"}${c.training.minutes !== null ? `, ${c.training.minutes} minutes on a 2-core CPU` : ""}.
- **Scores** (this half-precision release, ${c.scores.count} held-out examples; images by ${c.scores.sampler} in ${c.scores.sampleSteps} steps, guidance ${c.scores.guidance}, seed ${c.scores.seed}):
  - images matching their caption: ${pct(c.scores.generationAccuracy)}${c.scores.generationAllAttributes !== null ? ` (every attribute right: ${pct(c.scores.generationAllAttributes)})` : ""}
  - captions naming the right content: ${pct(c.scores.captionAccuracy)} (every attribute right: ${pct(c.scores.captionAllAttributes)}; word for word: ${pct(c.scores.captionExact)})
  - images that diverged into noise: ${pct(c.scores.noiseImages)}

## Limitations

It knows only what its training data holds: the captions and scenes of \`${d.dataset}\`${d.shapesDifficulty ? ` (${d.shapesDifficulty})` : ""} and the style of its plain text. Words it never saw in training are not understood; its plain text is that of a very small language model. It is a demonstration of the recipe, not a general image or text model.
`;
}

export function registerRelease(program: Command): void {
  addRunFlags(
    addCheckpointFlag(program.command("release"))
      .description(
        "make a checkpoint ready to ship: half-precision weights, scored as shipped, with a model card (MODEL_CARD.md, model-card.json)",
      )
      .requiredOption("--out <dir>", "the release folder")
      .option(
        "--eval-count <n>",
        "held-out captions and images scored (0: none)",
        (v) => parseInteger(v, "--eval-count", 0),
        200,
      )
      .option("--made-by <command>", "how the checkpoint was made, recorded in the card"),
  ).action(async (o) => {
    const stage = stageProgress(false);
    const card = await releaseCheckpoint(o.checkpoint, resolve(o.out), {
      evalCount: o.evalCount,
      madeBy: o.madeBy ?? null,
      onProgress: (what, done, total) => stage(EVAL_LABELS[what], done, total),
    });
    if (o.json) printJson({ out: resolve(o.out), ...card });
    else {
      console.log(`released to ${resolve(o.out)} (${(card.bytes / 1e6).toFixed(1)} MB)`);
      console.log(`  model card: ${join(resolve(o.out), MODEL_CARD_FILE)}`);
    }
  });
}
