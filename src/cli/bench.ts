/** `transfusion bench …`: performance figures, printed as a table or one JSON line. */
import type { Command } from "commander";
import { runCoreBench } from "../bench/core.js";
import type { BackendName } from "../tensor/backends/index.js";
import { endProgress, fmt, printJson, progressLine, table } from "./output.js";

export function registerBench(program: Command): void {
  const bench = program.command("bench").description("measure speed and memory");
  bench
    .command("core")
    .description(
      "sgemm rate and one training step (forward+backward+AdamW) of a reference transformer " +
        "(d=256, 4 layers, 4 heads, MLP 4×d, vocab 256, T=256, batch 8; smaller on the js backend)",
    )
    .option("--json", "print one JSON object on the last line")
    .option("--backend <name>", "js or native (default: native when built)")
    .option("--steps <n>", "timed training steps after warm-up", (v) => parsePositiveInt(v, "--steps"))
    .option("--dim <n>", "model width", (v) => parsePositiveInt(v, "--dim"))
    .option("--layers <n>", "transformer blocks", (v) => parsePositiveInt(v, "--layers"))
    .option("--seq-len <n>", "sequence length", (v) => parsePositiveInt(v, "--seq-len"))
    .option("--batch <n>", "batch size", (v) => parsePositiveInt(v, "--batch"))
    .action((o) => {
      const backendName = parseBackend(o.backend);
      const r = runCoreBench({
        ...(backendName ? { backend: backendName } : {}),
        ...(o.steps ? { steps: o.steps } : {}),
        ...(o.dim ? { dim: o.dim } : {}),
        ...(o.layers ? { layers: o.layers } : {}),
        ...(o.seqLen ? { seqLen: o.seqLen } : {}),
        ...(o.batch ? { batch: o.batch } : {}),
        onProgress: progressLine(false),
      });
      endProgress();
      if (o.json) {
        printJson(r);
        return;
      }
      const s = r.shape;
      console.log(
        table([
          ["backend", `${r.backend} (${r.threads} threads)`],
          [`sgemm ${r.sgemmN}³`, `${fmt(r.sgemmGflops, 1)} GFLOP/s`],
          ["OpenBLAS direct from C", r.sgemmGflopsOpenblasDirect === null ? "n/a" : `${fmt(r.sgemmGflopsOpenblasDirect, 1)} GFLOP/s (ratio ${fmt(r.sgemmRatioToDirect)})`],
          ["reference step", `d=${s.dim} L=${s.layers} H=${s.heads} T=${s.seqLen} B=${s.batch} V=${s.vocab}`],
          ["model FLOPs / step", `${fmt(r.stepFlops / 1e9, 1)} GFLOP`],
          ["train steps/s", fmt(r.trainStepsPerSecond, 3)],
          ["train tokens/s", fmt(r.trainTokensPerSecond, 0)],
          ["model GFLOP/s", fmt(r.trainModelGflops, 1)],
          ["MFU (vs sgemm above)", fmt(r.mfu, 3)],
          ["peak RSS", `${fmt(r.peakRssMb, 0)} MB`],
        ]),
      );
    });
}

/** Returns a positive integer parsed from a flag value, or throws naming the flag. */
export function parsePositiveInt(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${flag} must be a positive integer, got "${v}"`);
  return n;
}

/** Returns the backend name from a flag value, or undefined. */
export function parseBackend(v: string | undefined): BackendName | undefined {
  if (v === undefined) return undefined;
  if (v !== "js" && v !== "native") throw new Error(`--backend must be js or native, got "${v}"`);
  return v;
}
