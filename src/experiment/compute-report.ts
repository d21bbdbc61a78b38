/**
 * The compute side of the Transfusion-vs-discrete report: each metric against training FLOPs
 * for both families (mean over seeds, the seeds' spread as the table shows it), and the parity
 * FLOP ratios computed from those curves, written to docs/results/<name>.json.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { writePng } from "../data/image.js";
import { chartSvg, renderChart, type Series } from "../train/plot.js";
import { type CurvePoint, formatParity, type Parity, parityRatio } from "./parity.js";
import { markdownTable, meanSd } from "./report-table.js";
import type { ExperimentResult, RunRecord } from "./run.js";

type Metric = keyof RunRecord["metrics"];

/** The metrics compared, grouped as the paper groups its parity ratios. */
export const PARITY_METRICS: Array<{
  metric: Metric;
  label: string;
  task: "image generation" | "captioning" | "text";
  better: "higher" | "lower";
}> = [
  { metric: "fid", label: "FID", task: "image generation", better: "lower" },
  {
    metric: "generationAccuracy",
    label: "generation accuracy",
    task: "image generation",
    better: "higher",
  },
  { metric: "captionAccuracy", label: "caption accuracy", task: "captioning", better: "higher" },
  { metric: "captionLoss", label: "caption NLL", task: "captioning", better: "lower" },
  { metric: "bitsPerByte", label: "bits per byte", task: "text", better: "lower" },
];

/** Returns a family's curve for one metric: one point per budget, means over seeds. */
export function familyCurve(
  records: readonly RunRecord[],
  variants: readonly string[],
  metric: Metric,
): CurvePoint[] {
  return variants.flatMap((id) => {
    const rs = records.filter((r) => r.variant === id);
    const flops = meanSd(rs.map((r) => r.flops));
    const value = meanSd(rs.map((r) => r.metrics[metric]));
    return flops && value ? [{ flops: flops.mean, value: value.mean }] : [];
  });
}

/**
 * Writes one plot per metric (value against training TFLOP, both families) and the
 * parity JSON; returns the files and the Markdown (parity table, plots) for the report.
 */
export async function writeComputeReport(
  result: ExperimentResult,
  outDir: string,
  rel: (p: string) => string,
): Promise<{ files: Record<string, string>; markdown: string[]; parity: Record<string, unknown> }> {
  const { spec, records } = result;
  const discrete = (id: string) =>
    (spec.variants.find((v) => v.id === id)?.model?.imageCodes ?? 0) > 0;
  const ids = spec.variants.map((v) => v.id);
  const families = {
    transfusion: ids.filter((id) => !discrete(id)),
    discrete: ids.filter((id) => discrete(id)),
  };
  const files: Record<string, string> = {};
  const parity: Record<string, Parity | null> = {};
  const rows: string[][] = [];
  for (const m of PARITY_METRICS) {
    const tf = familyCurve(records, families.transfusion, m.metric);
    const dt = familyCurve(records, families.discrete, m.metric);
    const p = parityRatio(tf, dt, m.better);
    parity[m.metric] = p;
    rows.push([
      m.task,
      m.label,
      p ? p.target.toPrecision(3) : "–",
      p ? (p.targetFlops / 1e12).toFixed(1) : "–",
      formatParity(p),
    ]);
    const series: Series[] = [
      {
        name: "Transfusion",
        colour: [31, 119, 180],
        points: tf.map((c) => [c.flops / 1e12, c.value]),
      },
      {
        name: "discrete tokens",
        colour: [214, 39, 40],
        points: dt.map((c) => [c.flops / 1e12, c.value]),
      },
    ];
    if (series.every((s) => s.points.length === 0)) continue;
    const opts = {
      title: `${m.label} (${m.better} is better) against training compute, mean of seeds`,
      xLabel: "training TFLOP",
    };
    const base = join(outDir, `${spec.name}-${m.metric}`);
    files[m.metric] = `${base}.png`;
    await writePng(files[m.metric]!, renderChart(series, opts));
    writeFileSync(`${base}.svg`, chartSvg(series, opts));
  }
  const headline = parity.fid ?? null;
  const json = {
    flopsRatioAtParity: headline ? headline.ratio : null,
    flopsRatioAtParityBound: headline ? headline.bound : null,
    byMetric: parity,
    how: "For each metric: the discrete model's best mean over seeds (the smallest budget on ties) is the target; Transfusion's mean curve, linear in log FLOPs between its budgets, is followed to the first budget where it reaches the target; the ratio is Transfusion's FLOPs there over the discrete model's FLOPs at the target. 'at most': Transfusion's smallest budget already reaches it; 'more than': its largest does not. flopsRatioAtParity is the FID ratio, the paper's headline (Table 3, 0.029).",
  };
  const markdown = [
    "Parity FLOP ratio: the share of the discrete model's training compute at which Transfusion matches the discrete model's best result (below 1: Transfusion needs less; the paper's Table 3 row “Parity FLOP Ratio”).",
    "",
    markdownTable(["task", "metric", "discrete best", "at TFLOP", "parity FLOP ratio"], rows),
    "",
    ...Object.keys(files).flatMap((k) => [`![${k}](${rel(files[k]!)})`, ""]),
  ];
  return { files, markdown, parity: json };
}
