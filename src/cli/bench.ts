/** `transfusion bench …`: performance figures, printed as a table or one JSON line. */
import type { Command } from "commander";
import { runCoreBench } from "../bench/core.js";
import { PYTORCH_PORT_SAMPLE, runSampleBench } from "../bench/sample.js";
import { PYTORCH_PORT_TRAIN, runTrainBench } from "../bench/train.js";
import type { BackendName } from "../tensor/backends/index.js";
import { parseInteger } from "./args.js";
import { addRunFlags } from "./flags.js";
import { endProgress, fmt, printJson, progressLine, table } from "./output.js";

export function registerBench(program: Command): void {
  const bench = program.command("bench").description("measure speed and memory");
  const core = bench
    .command("core")
    .description(
      "sgemm rate and one training step (forward+backward+AdamW) of a reference transformer " +
        "(d=256, 4 layers, 4 heads, MLP 4×d, vocab 256, T=256, batch 8; smaller on the js backend)",
    )
    .option("--steps <n>", "timed training steps after warm-up", (v) =>
      parseInteger(v, "--steps", 1),
    )
    .option("--dim <n>", "model width", (v) => parseInteger(v, "--dim", 1))
    .option("--layers <n>", "transformer blocks", (v) => parseInteger(v, "--layers", 1))
    .option("--seq-len <n>", "sequence length", (v) => parseInteger(v, "--seq-len", 1))
    .option("--batch <n>", "batch size", (v) => parseInteger(v, "--batch", 1));
  addRunFlags(core).action((o) => {
    const backendName = o.backend as BackendName | undefined;
    const r = runCoreBench({
      ...(backendName ? { backend: backendName } : {}),
      ...(o.steps !== undefined ? { steps: o.steps } : {}),
      ...(o.dim !== undefined ? { dim: o.dim } : {}),
      ...(o.layers !== undefined ? { layers: o.layers } : {}),
      ...(o.seqLen !== undefined ? { seqLen: o.seqLen } : {}),
      ...(o.batch !== undefined ? { batch: o.batch } : {}),
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
        [
          "OpenBLAS direct from C",
          r.sgemmGflopsOpenblasDirect === null
            ? "n/a"
            : `${fmt(r.sgemmGflopsOpenblasDirect, 1)} GFLOP/s (ratio ${fmt(r.sgemmRatioToDirect)})`,
        ],
        [
          "reference step",
          `d=${s.dim} L=${s.layers} H=${s.heads} T=${s.seqLen} B=${s.batch} V=${s.vocab}`,
        ],
        ["model FLOPs / step", `${fmt(r.stepFlops / 1e9, 1)} GFLOP`],
        ["train steps/s", fmt(r.trainStepsPerSecond, 3)],
        ["train tokens/s", fmt(r.trainTokensPerSecond, 0)],
        ["model GFLOP/s", fmt(r.trainModelGflops, 1)],
        ["MFU (vs sgemm above)", fmt(r.mfu, 3)],
        ["peak RSS", `${fmt(r.peakRssMb, 0)} MB`],
      ]),
    );
  });
  const train = bench
    .command("train")
    .description(
      "training steps (forward+backward+clipped AdamW) of a fixed Transfusion workload: d=256, " +
        "4 layers, 4 heads, vocab 1024, 4×8×8 latents, patch 1, linear encoder, batch 8 rows of " +
        "32 text + BOI + 64 patches + EOI + 32 text (T=130); MFU against sgemm, vs the PyTorch port",
    )
    .option("--steps <n>", "timed training steps after warm-up", (v) =>
      parseInteger(v, "--steps", 1),
    );
  addRunFlags(train).action((o) => {
    const backendName = o.backend as BackendName | undefined;
    const r = runTrainBench({
      ...(backendName ? { backend: backendName } : {}),
      ...(o.steps !== undefined ? { steps: o.steps } : {}),
      onProgress: progressLine(false),
    });
    endProgress();
    if (o.json) {
      printJson(r);
      return;
    }
    const s = r.shape;
    const ph = r.phaseMs;
    console.log(
      table([
        ["backend", `${r.backend} (${r.threads} threads)`],
        [
          `sgemm ${r.sgemmN}³`,
          `${fmt(r.sgemmGflops, 1)} GFLOP/s (best of ${fmt(r.sgemmGflopsBefore, 1)} before, ${fmt(r.sgemmGflopsAfter, 1)} after the steps)`,
        ],
        [
          "model",
          `d=${s.dim} L=${s.layers} H=${s.heads} SwiGLU ${s.mlpHidden} V=${s.vocab} ${s.encoder} encoder`,
        ],
        [
          "latents",
          `${s.latentChannels}×${s.latentSize}×${s.latentSize}, patch ${s.patchSize} (${s.patchesPerImage} patches)`,
        ],
        ["batch", `${s.batch} rows × T=${s.seqLen} (${s.textTokensPerRow} text + image + BOI/EOI)`],
        [
          "params (blocks+head)",
          `${fmt(r.params / 1e6, 2)} M (${fmt(r.blockAndHeadParams / 1e6, 2)} M)`,
        ],
        ["model FLOPs / step", `${fmt(r.stepFlops / 1e9, 2)} GFLOP`],
        ["step time (median)", `${fmt(r.stepSecondsMedian * 1000, 0)} ms over ${r.steps} steps`],
        [
          "  batch/fwd/bwd/opt",
          `${fmt(ph.batch, 1)} / ${fmt(ph.forward, 0)} / ${fmt(ph.backward, 0)} / ${fmt(ph.optimizer, 1)} ms`,
        ],
        ["train steps/s", fmt(r.trainStepsPerSecond, 3)],
        ["train tokens/s", fmt(r.trainTokensPerSecond, 0)],
        ["model GFLOP/s", fmt(r.trainModelGflops, 1)],
        ["MFU (vs sgemm above)", fmt(r.mfu, 3)],
        ["peak RSS", `${fmt(r.peakRssMb, 0)} MB`],
        [
          "vs PyTorch port",
          `${fmt(r.vsPytorchPortTokensPerSecond)}× its ${PYTORCH_PORT_TRAIN.tokensPerSecond} tokens/s, ` +
            `${fmt(r.vsPytorchPortPeakMemory)}× its ${PYTORCH_PORT_TRAIN.peakMemoryMb} MB`,
        ],
      ]),
    );
  });

  const sample = bench
    .command("sample")
    .description(
      "sampling speed of the train bench's model (random weights; speed does not depend on them): " +
        "one image with 32 DDIM steps from a 32-token prompt, unguided and with guidance 3, and " +
        "greedy text with the KV cache (32-token prompt, 64 new tokens)",
    )
    .option("--repeats <n>", "timed repeats of each measurement", (v) =>
      parseInteger(v, "--repeats", 1),
    );
  addRunFlags(sample).action((o) => {
    const backendName = o.backend as BackendName | undefined;
    const r = runSampleBench({
      ...(backendName ? { backend: backendName } : {}),
      ...(o.repeats !== undefined ? { repeats: o.repeats } : {}),
      onProgress: progressLine(false),
    });
    endProgress();
    if (o.json) {
      printJson(r);
      return;
    }
    const s = r.shape;
    const w = r.workload;
    const P = PYTORCH_PORT_SAMPLE;
    console.log(
      table([
        ["backend", `${r.backend} (${r.threads} threads)`],
        [
          "model",
          `d=${s.dim} L=${s.layers} H=${s.heads} V=${s.vocab}, ${s.latentChannels}×${s.latentSize}×${s.latentSize} latents, ${s.patchesPerImage} patches`,
        ],
        [
          "workload",
          `${w.promptTokens}-token prompt, ${w.samplerSteps} DDIM steps, ${w.newTokens} new tokens; median of ${w.repeats}`,
        ],
        [
          "image (no guidance)",
          `${fmt(r.imageSeconds32Steps, 3)} s  (PyTorch port ${P.imageSeconds32Steps} s, ${fmt(r.speedupImageVsPytorchPort)}×)`,
        ],
        [
          `image (guidance ${w.guidanceScale})`,
          `${fmt(r.imageSeconds32StepsGuided, 3)} s  (PyTorch port ${P.imageSeconds32StepsGuided} s, ${fmt(r.speedupImageGuidedVsPytorchPort)}×)`,
        ],
        [
          "text per token",
          `${fmt(r.textMsPerToken)} ms  (PyTorch port ${P.textMsPerToken} ms, ${fmt(r.speedupTextVsPytorchPort)}×)`,
        ],
        ["text prefill", `${fmt(r.textPrefillMs, 1)} ms for ${w.promptTokens} tokens`],
        ["peak RSS", `${fmt(r.peakRssMb, 0)} MB`],
      ]),
    );
  });
}
