/**
 * The headline figure of the Transfusion-vs-discrete comparison: at what share of the discrete
 * model's training compute Transfusion reaches the discrete model's best result on a metric
 * (the paper's "parity FLOP ratio", Table 3). Computed from the mean curves over seeds.
 */

/** One compute budget of one model family: training FLOPs and the metric's mean over seeds. */
export interface CurvePoint {
  flops: number;
  value: number;
}

export interface Parity {
  /** The discrete model's best mean value, and the training FLOPs of the budget that had it. */
  target: number;
  targetFlops: number;
  /**
   * Transfusion's FLOPs at that value (interpolated), or the end of its measured range when
   * parity lies outside it (then `bound` says on which side).
   */
  flops: number;
  /** flops / targetFlops: below 1, Transfusion needs less compute for the same result. */
  ratio: number;
  /**
   * "interpolated": the curve crosses the target between two budgets; "at most": Transfusion's
   * smallest budget already matches it (the true ratio is this or less); "more than":
   * Transfusion's largest budget does not reach it.
   */
  bound: "interpolated" | "at most" | "more than";
}

/**
 * Returns where the `transfusion` curve reaches the best value of the `discrete` curve, for a
 * metric where `better` values are higher or lower. The curve is taken as piecewise linear in
 * log FLOPs between the measured budgets, and the first crossing counts; null when either
 * curve is empty.
 */
export function parityRatio(
  transfusion: readonly CurvePoint[],
  discrete: readonly CurvePoint[],
  better: "higher" | "lower",
): Parity | null {
  if (transfusion.length === 0 || discrete.length === 0) return null;
  const good = (a: number, b: number) => (better === "higher" ? a >= b : a <= b);
  // The best value, the smallest budget that has it on ties.
  const best = [...discrete]
    .sort((a, b) => a.flops - b.flops)
    .reduce((a, b) => (good(b.value, a.value) && b.value !== a.value ? b : a));
  const curve = [...transfusion].sort((a, b) => a.flops - b.flops);
  const target = best.value;
  const result = (flops: number, bound: Parity["bound"]): Parity => ({
    target,
    targetFlops: best.flops,
    flops,
    ratio: flops / best.flops,
    bound,
  });
  if (good(curve[0]!.value, target)) return result(curve[0]!.flops, "at most");
  for (let i = 1; i < curve.length; i++) {
    const a = curve[i - 1]!;
    const b = curve[i]!;
    if (!good(b.value, target)) continue;
    // Linear in log FLOPs between a (short of the target) and b (at or past it).
    const f = (target - a.value) / (b.value - a.value);
    const logF = Math.log(a.flops) + f * (Math.log(b.flops) - Math.log(a.flops));
    return result(Math.exp(logF), "interpolated");
  }
  return result(curve[curve.length - 1]!.flops, "more than");
}

/** Returns the parity as the tables print it, e.g. "0.31", "≤ 0.12" or "> 2.0". */
export function formatParity(p: Parity | null): string {
  if (!p) return "–";
  const r = p.ratio >= 1 ? p.ratio.toFixed(2) : p.ratio.toPrecision(2);
  return p.bound === "interpolated" ? r : p.bound === "at most" ? `≤ ${r}` : `> ${r}`;
}
