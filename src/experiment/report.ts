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
import { type ExperimentResult, type RunRecord, runName } from "./run.js";
import { EVAL_GUIDANCE } from "./specs.js";

const COLOURS: Array<[number, number, number]> = [
  [31, 119, 180],
  [214, 39, 40],
  [44, 160, 44],
  [148, 103, 189],
  [255, 127, 14],
  [23, 190, 207],
];

/** Mean and sample standard deviation (0 for one value); null when no value is known. */
export function meanSd(values: ReadonlyArray<number | null>): { mean: number; sd: number } | null {
  const v = values.filter((x): x is number => x !== null && Number.isFinite(x));
  if (v.length === 0) return null;
  const mean = v.reduce((s, x) => s + x, 0) / v.length;
  const sd =
    v.length > 1 ? Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / (v.length - 1)) : 0;
  return { mean, sd };
}

function cell(values: ReadonlyArray<number | null>, digits: number, percent = false): string {
  const m = meanSd(values);
  if (!m) return "–";
  const k = percent ? 100 : 1;
  return `${(m.mean * k).toFixed(digits)} ± ${(m.sd * k).toFixed(digits)}`;
}

type Metric = keyof RunRecord["metrics"];

const COLUMNS: Array<{ head: string; metric: Metric; digits: number; percent?: boolean }> = [
  { head: "generation acc. %", metric: "generationAccuracy", digits: 1, percent: true },
  { head: "FID", metric: "fid", digits: 2 },
  { head: "real-vs-real FID", metric: "fidRealFloor", digits: 2 },
  { head: "checker acc. %", metric: "checkerAccuracy", digits: 1, percent: true },
  { head: "caption acc. %", metric: "captionAccuracy", digits: 1, percent: true },
  { head: "caption NLL", metric: "captionLoss", digits: 3 },
  { head: "bits/byte", metric: "bitsPerByte", digits: 3 },
];

/** Returns the Markdown table of an experiment's records (one row per variant and scale). */
export function resultsTable(result: ExperimentResult): string {
  const { spec, records } = result;
  const scales = spec.guidance ?? [EVAL_GUIDANCE];
  const sweep = scales.length > 1;
  const head = [
    sweep ? "guidance" : "variant",
    ...COLUMNS.map((c) => c.head),
    "image loss",
    "parameters",
  ];
  const rows: string[][] = [];
  for (const v of spec.variants) {
    for (const g of scales) {
      const rs = records.filter((r) => r.variant === v.id && r.guidance === g);
      if (rs.length === 0) continue;
      const row = [
        sweep ? String(g) : v.label,
        ...COLUMNS.map((c) =>
          cell(
            rs.map((r) => r.metrics[c.metric]),
            c.digits,
            c.percent,
          ),
        ),
        cell(
          rs.map((r) => r.finalImageLoss),
          4,
        ),
        rs[0]!.parameters.toLocaleString("en-US"),
      ];
      rows.push(row);
    }
  }
  return markdownTable(head, rows);
}

/** Returns a Markdown table with every column padded to its widest cell (as formatters do). */
export function markdownTable(head: readonly string[], rows: readonly string[][]): string {
  const len = (x: string) => [...x].length;
  const widths = head.map((h, c) => Math.max(3, len(h), ...rows.map((r) => len(r[c] ?? ""))));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((x, c) => x + " ".repeat(widths[c]! - len(x))).join(" | ")} |`;
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

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
  if (series.some((s) => s.points.length > 0) && spec.variants.length > 1) {
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
      const out = pipeline.textToImage(captions, {
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
  const body = [
    `### ${spec.title}`,
    "",
    `Paper: ${spec.paper}`,
    "",
    resultsTable(result),
    "",
    `${new Set(result.records.map((r) => r.seed)).size} seeds, ${result.records[0]?.steps ?? 0} steps each; mean ± standard deviation over seeds (per-seed values: [${rel(files.json)}](${rel(files.json)})).`,
    "",
    ...(files.loss ? [`![image loss](${rel(files.loss)})`, ""] : []),
    ...(files.tradeoff ? [`![accuracy vs FID](${rel(files.tradeoff)})`, ""] : []),
    ...(files.samples ? [`![samples](${rel(files.samples)})`] : []),
  ].join("\n");
  writeFileSync(files.markdown, replaceSection(readOr(files.markdown, ""), spec.name, body));
  return files;
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
