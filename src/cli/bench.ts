/** `transfusion bench …`: performance figures, printed as a table or one JSON line. */
import type { Command } from "commander";
import { type CoreBenchResult, runCoreBench } from "../bench/core.js";
import { runProfileBench } from "../bench/profile.js";
import { PYTORCH_PORT_SAMPLE, runSampleBench } from "../bench/sample.js";
import {
  isTrainWorkload,
  PYTORCH_PORT_TRAIN,
  runTrainBench,
  TRAIN_WORKLOADS,
  type TrainBenchResult,
} from "../bench/train.js";
import {
  checkBrowserBench,
  runWebBench,
  WEB_BENCH_CAPTION,
  WEB_BENCH_PROMPT,
  type WebBenchRatios,
  type WebBenchResult,
  type WebBenchTimes,
} from "../bench/web.js";
import type { BackendName } from "../tensor/backends/index.js";
import { parseInteger } from "./args.js";
import { addCheckpointFlag, addRunFlags } from "./flags.js";
import { endProgress, fmt, printJson, progressLine, table } from "./output.js";
import { servedCheckpoint, startWebServer, webAppDir } from "./serve.js";

/** The options every bench takes besides its own. */
interface CommonBenchOptions {
  backend?: BackendName;
  onProgress?: (msg: string) => void;
}

/** The names of O's number-valued options. */
type NumberOption<O> = { [K in keyof O]-?: O[K] extends number | undefined ? K : never }[keyof O] &
  string;

/** One `transfusion bench <name>` command. */
interface BenchCommand<O extends CommonBenchOptions, R> {
  name: string;
  description: string;
  /** The bench's integer options (≥ 1) given as flags, with their help: seqLen → --seq-len <n>. */
  flags: Partial<Record<NumberOption<O>, string>>;
  /** Adds the bench's flags of other kinds; their parsed values are passed on by name. */
  moreFlags?: { add: (cmd: Command) => Command; keys: Array<keyof O & string> };
  run: (opts?: O) => R | Promise<R>;
  /** The table rows after the backend row. */
  rows: (r: R) => Array<[string, string]>;
}

/**
 * Adds a bench command: its integer flags, --backend and --json, and the action that runs the
 * bench with the chosen backend, the flags that were given and a progress line, then prints
 * the result as one JSON line or as a table.
 */
function addBench<O extends CommonBenchOptions, R extends { backend: string; threads: number }>(
  bench: Command,
  { name, description, flags, moreFlags, run, rows }: BenchCommand<O, R>,
): void {
  const cmd = bench.command(name).description(description);
  const keys: string[] = [...Object.keys(flags), ...(moreFlags?.keys ?? [])];
  for (const [key, help] of Object.entries(flags) as Array<[string, string]>) {
    const flag = `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
    cmd.option(`${flag} <n>`, help, (v) => parseInteger(v, flag, 1));
  }
  moreFlags?.add(cmd);
  addRunFlags(cmd).action(async (o) => {
    const opts: Record<string, unknown> = o.backend ? { backend: o.backend } : {};
    for (const key of keys) if (o[key] !== undefined) opts[key] = o[key];
    opts.onProgress = progressLine(false);
    const r = await run(opts as O);
    endProgress();
    if (o.json) {
      printJson(r);
      return;
    }
    console.log(table([["backend", `${r.backend} (${r.threads} threads)`], ...rows(r)]));
  });
}

/** Adds --workload <name>: which train-bench workload `bench train` and `bench profile` run. */
function addWorkloadFlag(cmd: Command): Command {
  const names = Object.keys(TRAIN_WORKLOADS);
  return cmd.option(
    "--workload <name>",
    `training workload: ${names.join(" or ")} (demo: the matrix shapes of a \`transfusion demo\` step)`,
    (v: string) => {
      if (!isTrainWorkload(v)) {
        throw new Error(`--workload ${v}: expected ${names.join(" or ")}`);
      }
      return v;
    },
    "bench",
  );
}

/** The rows of a training bench's rates, from steps/s to MFU, then its peak memory. */
function trainingRateRows(r: CoreBenchResult | TrainBenchResult): Array<[string, string]> {
  return [
    ["train steps/s", fmt(r.trainStepsPerSecond, 3)],
    ["train tokens/s", fmt(r.trainTokensPerSecond, 0)],
    ["model GFLOP/s", fmt(r.trainModelGflops, 1)],
    ["MFU (vs sgemm above)", fmt(r.mfu, 3)],
    ["peak RSS", `${fmt(r.peakRssMb, 0)} MB`],
  ];
}

/** The options of `bench web` on the command line: the checkpoint to serve and the repeats. */
interface WebBenchCliOptions {
  checkpoint?: string;
  repeats?: number;
  backend?: BackendName;
  onProgress?: (msg: string) => void;
}

/**
 * Returns the web bench's figures for the app built in dist/web (or $TRANSFUSION_WEB_DIR) served
 * with the checkpoint (default: the shipped model) by `serve`'s server on a free port.
 */
async function benchServedApp(o: WebBenchCliOptions = {}): Promise<WebBenchResult> {
  const checkpoint = servedCheckpoint(o.checkpoint);
  await checkBrowserBench();
  const server = await startWebServer({
    webDir: webAppDir(),
    checkpoint,
    host: "127.0.0.1",
    port: 0,
  });
  try {
    return await runWebBench({
      url: server.url,
      checkpoint,
      ...(o.repeats !== undefined ? { repeats: o.repeats } : {}),
      ...(o.backend !== undefined ? { backend: o.backend } : {}),
      ...(o.onProgress ? { onProgress: o.onProgress } : {}),
    });
  } finally {
    await server.close();
  }
}

/** Returns "a s / b s / c tokens/s" for one place the web bench's work ran. */
function webTimes(t: WebBenchTimes | null): string {
  if (t === null) return "not run";
  return `${fmt(t.imageSecondsGuided)} s / ${fmt(t.imageSeconds)} s / ${fmt(t.textTokensPerSecond, 0)} tokens/s`;
}

/** Returns "a× / b× / c×": browser time ÷ Node time for guided, unguided and text. */
function webRatios(r: WebBenchRatios | null): string {
  if (r === null) return "n/a";
  return `${fmt(r.imageGuided)}× / ${fmt(r.image)}× / ${fmt(r.text)}×`;
}

export function registerBench(program: Command): void {
  const bench = program.command("bench").description("measure speed and memory");
  addBench(bench, {
    name: "core",
    description:
      "sgemm rate and one training step (forward+backward+AdamW) of a reference transformer " +
      "(d=256, 4 layers, 4 heads, MLP 4×d, vocab 256, T=256, batch 8; smaller on the js backend)",
    flags: {
      steps: "timed training steps after warm-up",
      dim: "model width",
      layers: "transformer blocks",
      seqLen: "sequence length",
      batch: "batch size",
    },
    run: runCoreBench,
    rows: (r) => {
      const s = r.shape;
      return [
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
        ...trainingRateRows(r),
      ];
    },
  });

  addBench(bench, {
    name: "train",
    description:
      "training steps (forward+backward+clipped AdamW) of a fixed Transfusion workload: d=256, " +
      "4 layers, 4 heads, vocab 1024, 4×8×8 latents, patch 1, linear encoder, batch 8 rows of " +
      "32 text + BOI + 64 patches + EOI + 32 text (T=130); MFU against sgemm, vs the PyTorch port; " +
      "--workload demo runs the demo step's shapes instead",
    flags: { steps: "timed training steps after warm-up" },
    moreFlags: { add: addWorkloadFlag, keys: ["workload"] },
    run: runTrainBench,
    rows: (r) => {
      const s = r.shape;
      const ph = r.phaseMs;
      return [
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
        ...trainingRateRows(r),
        ...(r.vsPytorchPortTokensPerSecond === null || r.vsPytorchPortPeakMemory === null
          ? []
          : [
              [
                "vs PyTorch port",
                `${fmt(r.vsPytorchPortTokensPerSecond)}× its ${PYTORCH_PORT_TRAIN.tokensPerSecond} tokens/s, ` +
                  `${fmt(r.vsPytorchPortPeakMemory)}× its ${PYTORCH_PORT_TRAIN.peakMemoryMb} MB`,
              ] as [string, string],
            ]),
      ];
    },
  });

  addBench(bench, {
    name: "sample",
    description:
      "sampling speed of the train bench's model (random weights; speed does not depend on them): " +
      "one image with 32 DDIM steps from a 32-token prompt, unguided and with guidance 3, and " +
      "greedy text with the KV cache (32-token prompt, 64 new tokens)",
    flags: { repeats: "timed repeats of each measurement" },
    run: runSampleBench,
    rows: (r) => {
      const s = r.shape;
      const w = r.workload;
      const P = PYTORCH_PORT_SAMPLE;
      return [
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
      ];
    },
  });

  addBench(bench, {
    name: "profile",
    description:
      "where the time goes: every kernel timed while the train bench's steps and the sample " +
      "bench's images and text run, with its share of the wall time, its calls and, for " +
      "matrix products and attention, its GFLOP/s; the rest is the tensor core's own work",
    flags: { steps: "profiled training steps" },
    moreFlags: { add: addWorkloadFlag, keys: ["workload"] },
    run: runProfileBench,
    rows: (r) => {
      const rows: Array<[string, string]> = [];
      for (const [what, p] of [
        [`training (${r.train.steps} steps, ${r.train.workload} workload)`, r.train],
        ["sampling (sample bench)", r.sample],
      ] as const) {
        rows.push([what, `${fmt(p.seconds, 2)} s`]);
        const outside = p.kernels.filter((k) => k.kernel === "outside kernels");
        for (const k of [
          ...p.kernels.filter((k) => k.kernel !== "outside kernels").slice(0, 10),
          ...outside,
        ]) {
          const rate = k.gflops === null ? "" : `, ${fmt(k.gflops, 1)} GFLOP/s`;
          rows.push([`  ${k.kernel}`, `${fmt(100 * k.share, 1)}% (${k.calls} calls${rate})`]);
        }
      }
      return rows;
    },
  });

  addBench(bench, {
    name: "web",
    description:
      "the web app in headless Chromium (playwright-core; Debian's /usr/bin/chromium or " +
      "$TRANSFUSION_CHROMIUM) at the page's default settings, served with a checkpoint on a free " +
      "port: time to first image from navigation (load included), per guided and unguided " +
      `image, text tokens/s of a continuation; caption "${WEB_BENCH_CAPTION}", continuation ` +
      `of "${WEB_BENCH_PROMPT}" with no images; then the same work in Node on js and native ` +
      "(--backend: only that one) and the browser ÷ Node time ratios",
    flags: { repeats: "timed repeats of each measurement (default 5)" },
    moreFlags: { add: (cmd) => addCheckpointFlag(cmd, { shipped: true }), keys: ["checkpoint"] },
    run: benchServedApp,
    rows: (r) => {
      const w = r.workload;
      return [
        ["browser", `${r.browser}, the model in a Web Worker`],
        ["checkpoint", r.checkpoint],
        [
          "workload",
          `${w.sampler} ${w.steps} steps, guidance ${w.guidance} (or 0), a preview every ${w.previewEvery}; ` +
            `${w.continuationTokens} tokens at temperature ${w.temperature}; median of ${w.repeats}`,
        ],
        ["model ready", `${fmt(r.readySeconds)} s from navigation`],
        ["first image", `${fmt(r.firstImageSeconds)} s from navigation (load included)`],
        ["(medians)", "guided image / unguided image / text"],
        ["browser", webTimes(r.browserTimes)],
        ["node js", webTimes(r.node.js)],
        [
          `node native${r.node.native ? ` (${r.node.native.threads} threads)` : ""}`,
          webTimes(r.node.native),
        ],
        ["browser ÷ node js", webRatios(r.ratios.vsNodeJs)],
        ["browser ÷ native", webRatios(r.ratios.vsNative)],
      ];
    },
  });
}
