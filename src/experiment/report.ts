/**
 * An experiment's report: a Markdown table of every metric (mean ± standard deviation over
 * seeds, with the per-seed values in the JSON beside it), image-loss curves per variant, a grid
 * of samples per variant, and for the guidance sweep an accuracy-vs-FID plot. The table goes
 * between markers in docs/RESULTS.md, so the prose around it is kept when it is rewritten.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { getDataset } from "../data/datasets/index.js";
import { writeImageGrid } from "../data/grid.js";
import type { Image } from "../data/image.js";
import { writePng } from "../data/image.js";
import { TransfusionPipeline } from "../generate/pipeline.js";
import { writeJson } from "../io/checkpoint.js";
import { chartSvg, renderChart, type Series } from "../train/plot.js";
import { heldOutCaptions, readHistory } from "../train/run.js";
import { writeComputeReport } from "./compute-report.js";
import { resultsTable } from "./report-table.js";
import { type ExperimentResult, runName } from "./run.js";
import { EVAL_GUIDANCE } from "./specs.js";

export { markdownTable, meanSd, resultsTable } from "./report-table.js";

const COLOURS: Array<[number, number, number]> = [
  [31, 119, 180],
  [214, 39, 40],
  [44, 160, 44],
  [148, 103, 189],
  [255, 127, 14],
  [23, 190, 207],
];

/** Returns a moving average of `points` over `window` values, thinned to every `every`-th. */
function smooth(points: Array<[number, number]>, window: number, every: number) {
  const out: Array<[number, number]> = [];
  let sum = 0;
  for (let i = 0; i < points.length; i++) {
    sum += points[i]![1];
    if (i >= window) sum -= points[i - window]![1];
    if (i >= window - 1 && (i + 1) % every === 0) {
      out.push([points[i]![0], sum / Math.min(window, i + 1)]);
    }
  }
  return out;
}

/**
 * Writes the report files of an experiment into `docsDir` (RESULTS.md and results/…) and
 * returns their paths. `sampleCount` images per variant are drawn for the sample grid.
 */
export async function writeReport(
  result: ExperimentResult,
  docsDir: string,
  sampleCount = 8,
): Promise<Record<string, string>> {
  const { spec } = result;
  const outDir = join(docsDir, "results");
  mkdirSync(outDir, { recursive: true });
  const files: Record<string, string> = {};
  const seed0 = Math.min(...result.records.map((r) => r.seed));

  files.json = join(outDir, `${spec.name}.json`);
  writeJson(files.json, {
    experiment: spec.name,
    title: spec.title,
    config: result.config,
    records: result.records,
  });

  // Image-loss curves, one per variant (first seed), smoothed over 50 steps.
  const series: Series[] = spec.variants.map((v, i) => {
    const dir = result.runDirs[runName(v, seed0)];
    const history = dir ? readHistory(join(dir, "metrics.jsonl")) : [];
    return {
      name: v.label,
      colour: COLOURS[i % COLOURS.length]!,
      points: smooth(
        history.map((m) => [m.step, m.image] as [number, number]),
        50,
        10,
      ),
    };
  });
  // Image losses of the two families are in different units (noise MSE, nats per code).
  const mixed = new Set(spec.variants.map((v) => (v.model?.imageCodes ?? 0) > 0)).size > 1;
  if (series.some((s) => s.points.length > 0) && spec.variants.length > 1 && !mixed) {
    const opts = {
      title: `${spec.name}: image loss (50-step mean, seed ${seed0})`,
      xLabel: "step",
      logY: true,
    };
    files.loss = join(outDir, `${spec.name}-loss.png`);
    await writePng(files.loss, renderChart(series, opts));
    writeFileSync(join(outDir, `${spec.name}-loss.svg`), chartSvg(series, opts));
  }

  // Guidance sweep: generation accuracy against FID, one line per seed, scales in order.
  const scales = spec.guidance ?? [EVAL_GUIDANCE];
  if (scales.length > 1) {
    const seeds = [...new Set(result.records.map((r) => r.seed))].sort((a, b) => a - b);
    const trade: Series[] = seeds.map((s, i) => ({
      name: `seed ${s}`,
      colour: COLOURS[i % COLOURS.length]!,
      points: scales.flatMap((g) => {
        const r = result.records.find((x) => x.seed === s && x.guidance === g);
        return r && r.metrics.fid !== null && r.metrics.generationAccuracy !== null
          ? [[r.metrics.fid, r.metrics.generationAccuracy] as [number, number]]
          : [];
      }),
    }));
    const opts = {
      title: `generation accuracy (y) vs FID (x), guidance ${scales.join(", ")} (right to left)`,
      xLabel: "FID",
    };
    files.tradeoff = join(outDir, `${spec.name}-tradeoff.png`);
    await writePng(files.tradeoff, renderChart(trade, opts));
    writeFileSync(join(outDir, `${spec.name}-tradeoff.svg`), chartSvg(trade, opts));
  }

  // Samples: the same held-out captions for every variant (and scale), first seed.
  const base = result.config;
  const dataset = await getDataset(base.data, {
    imageSize: base.imageSize ?? 32,
    ...(base.shapesDifficulty ? { difficulty: base.shapesDifficulty } : {}),
  });
  const captions = heldOutCaptions(dataset, sampleCount);
  const images: Image[] = [];
  const labels: string[] = [];
  for (const v of spec.variants) {
    const dir = result.runDirs[runName(v, seed0)];
    if (!dir || !existsSync(join(dir, "checkpoint"))) continue;
    const pipeline = TransfusionPipeline.load(join(dir, "checkpoint"));
    for (const g of scales) {
      const r = result.records.find(
        (x) => x.variant === v.id && x.seed === seed0 && x.guidance === g,
      );
      const out = await pipeline.textToImage(captions, {
        ...(r ? r.settings.image : {}),
        guidanceScale: g,
      });
      images.push(...out.images);
      const tag = scales.length > 1 ? `guidance ${g}` : v.label;
      labels.push(...captions.map((c, i) => (i === 0 ? `[${tag}] ${c}` : c)));
    }
  }
  if (images.length > 0) {
    files.samples = join(outDir, `${spec.name}-samples.png`);
    await writeImageGrid(files.samples, images, { columns: captions.length, captions: labels });
  }

  // The table, between markers in RESULTS.md.
  files.markdown = join(docsDir, "RESULTS.md");
  const rel = (p: string) => relative(docsDir, p);
  const compute = mixed ? await writeComputeReport(result, outDir, rel) : null;
  if (compute) {
    Object.assign(files, compute.files);
    files.json = join(outDir, `${spec.name}.json`);
    writeJson(files.json, {
      experiment: spec.name,
      title: spec.title,
      ...compute.parity,
      config: result.config,
      records: result.records,
    });
  }
  const steps = [...new Set(result.records.map((r) => r.steps))].sort((a, b) => a - b);
  const body = [
    `### ${spec.title}`,
    "",
    `Paper: ${spec.paper}`,
    "",
    resultsTable(result),
    "",
    `${new Set(result.records.map((r) => r.seed)).size} seeds, ${steps.join(" / ")} steps; mean ± standard deviation over seeds (per-seed values: [${rel(files.json)}](${rel(files.json)})). Images drawn with ${describeSampling(result)}.`,
    "",
    ...(compute ? compute.markdown : []),
    ...(files.loss ? [`![image loss](${rel(files.loss)})`, ""] : []),
    ...(files.tradeoff ? [`![accuracy vs FID](${rel(files.tradeoff)})`, ""] : []),
    ...(files.samples ? [`![samples](${rel(files.samples)})`] : []),
  ].join("\n");
  writeFileSync(files.markdown, replaceSection(readOr(files.markdown, ""), spec.name, body));
  return files;
}

/** Returns how the evaluation images were drawn, from the first record's settings. */
function describeSampling(result: ExperimentResult): string {
  const r = result.records[0];
  if (!r) return "no settings recorded";
  const im = r.settings.image;
  const discrete = result.spec.variants.some((v) => (v.model?.imageCodes ?? 0) > 0);
  const scales = result.spec.guidance ?? [EVAL_GUIDANCE];
  const g = scales.length > 1 ? "" : `guidance ${scales[0]}, `;
  return `${g}${im.sampler === "ddpm" ? "respaced DDPM" : im.sampler} (${im.steps} steps), x₀ clipped to ±${im.x0Clip ?? "∞"}${discrete ? " for Transfusion, codes sampled at temperature 1 for the discrete model" : ""}, ${r.settings.count} held-out captions`;
}

function readOr(path: string, fallback: string): string {
  return existsSync(path) ? readFileSync(path, "utf8") : fallback;
}

/**
 * Returns `doc` with the text between `<!-- experiment:NAME -->` and `<!-- /experiment:NAME -->`
 * replaced by `body` (the markers are appended when absent); everything else is kept.
 */
export function replaceSection(doc: string, name: string, body: string): string {
  const open = `<!-- experiment:${name} -->`;
  const close = `<!-- /experiment:${name} -->`;
  const block = `${open}\n${body}\n${close}`;
  const a = doc.indexOf(open);
  const b = doc.indexOf(close);
  if (a >= 0 && b > a) return doc.slice(0, a) + block + doc.slice(b + close.length);
  const sep = doc.length === 0 || doc.endsWith("\n\n") ? "" : doc.endsWith("\n") ? "\n" : "\n\n";
  return `${doc}${sep}${block}\n`;
}
