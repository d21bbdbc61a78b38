/**
 * The tables of an experiment report: mean ± standard deviation over seeds of every metric, one
 * row per variant (or guidance scale), padded as the Markdown formatter keeps them.
 */
import type { ExperimentResult, RunRecord } from "./run.js";
import { EVAL_GUIDANCE } from "./specs.js";

/**
 * Mean and sample standard deviation (0 for one value); null when no value is known (null, or
 * undefined in a record cached before its metric existed).
 */
export function meanSd(
  values: ReadonlyArray<number | null | undefined>,
): { mean: number; sd: number } | null {
  const v = values.filter((x): x is number => typeof x === "number" && Number.isFinite(x));
  if (v.length === 0) return null;
  const mean = v.reduce((s, x) => s + x, 0) / v.length;
  const sd =
    v.length > 1 ? Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / (v.length - 1)) : 0;
  return { mean, sd };
}

export function cell(
  values: ReadonlyArray<number | null | undefined>,
  digits: number,
  percent = false,
): string {
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
  { head: "noise images %", metric: "noiseImages", digits: 1, percent: true },
  { head: "caption acc. %", metric: "captionAccuracy", digits: 1, percent: true },
  { head: "caption NLL", metric: "captionLoss", digits: 3 },
  { head: "bits/byte", metric: "bitsPerByte", digits: 3 },
  { head: "held-out image loss", metric: "imageLoss", digits: 4 },
];

/** Returns the Markdown table of an experiment's records (one row per variant and scale). */
export function resultsTable(result: ExperimentResult): string {
  const { spec, records } = result;
  const scales = spec.guidance ?? [EVAL_GUIDANCE];
  const sweep = scales.length > 1;
  const head = [
    sweep ? "guidance" : "variant",
    ...COLUMNS.map((c) => c.head),
    "train TFLOP",
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
          rs.map((r) => (r.flops ?? 0) / 1e12),
          1,
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
