/**
 * transfusion: train and sample Transfusion models (one transformer that predicts the next
 * text token and denoises image latents) on a CPU.
 */

// data
export { trainBpe } from "./data/bpe-train.js";
export { cacheRoot } from "./data/cache.js";
export { DATASET_NAMES, getDataset, getTextCorpus } from "./data/datasets/index.js";
export { type Document, loadDocuments, type Part, writeDocuments } from "./data/documents.js";
export { writeImageGrid } from "./data/grid.js";
export { type Image, readImage, writePng } from "./data/image.js";
export { convertChannels, readImageConverted } from "./data/image-channels.js";
export { DEFAULT_MIXER, type MixerOptions, mixBatch } from "./data/mixer.js";
export { packDocuments, type TokenDocument } from "./data/pack.js";
export { addPngText, readPngText } from "./data/png-text.js";
export { Tokenizer } from "./data/tokenizer.js";
// diffusion
export { createSampler } from "./diffusion/config.js";
export { FlowEulerSampler } from "./diffusion/flow.js";
export { DdimSampler, DdpmSampler, guide } from "./diffusion/samplers.js";
export { cosineSchedule, linearSchedule, NoiseSchedule } from "./diffusion/schedule.js";
// evaluation and experiments
export {
  defaultClassifierRoot,
  EvalClassifier,
  ensureClassifier,
  loadClassifier,
  saveClassifier,
  trainClassifier,
} from "./eval/classifier.js";
export { type EvaluateResult, evaluatePipeline } from "./eval/evaluate.js";
export { fid, frechetDistance } from "./eval/metrics.js";
export { bitsPerByte } from "./eval/perplexity.js";
export { colourAndKindMatch } from "./eval/shapes.js";
export { writeReport } from "./experiment/report.js";
export { runExperiment } from "./experiment/run.js";
export { EXPERIMENTS, getExperiment } from "./experiment/specs.js";
// generation and model files
export { generateBatch } from "./generate/generate.js";
export {
  type CheckpointFiles,
  type CompleteOptions,
  type FromUrlOptions,
  type ImageOptions,
  type LoadProgress,
  loadPipeline,
  loadPretrained,
  TransfusionPipeline,
} from "./generate/pipeline.js";
export { normalisePrompt, promptStyle, unseenWords } from "./generate/prompt.js";
export { loadVae, saveVae } from "./io/vae-files.js";
export { loadVqVae, saveVqVae } from "./io/vqvae-files.js";
// model
export { makeConfig, PRESETS, type TransfusionConfig, validateConfig } from "./model/config.js";
export { buildMask, type SequenceLayout } from "./model/layout.js";
export {
  type LossParts,
  lossValues,
  readLossValues,
  type TransfusionBatch,
  transfusionLoss,
} from "./model/loss.js";
export { Transfusion } from "./model/transfusion.js";
export { Vae } from "./model/vae.js";
export { VqVae, type VqVaeConfig, vqvaeConfig } from "./model/vqvae.js";
// modules
export { Conv2d, Embedding, GroupNorm, LayerNorm, Linear, RMSNorm } from "./nn/layers.js";
export { TransformerLM } from "./nn/lm.js";
export { Module } from "./nn/module.js";
export { Attention, Block, Mlp } from "./nn/transformer.js";
// tensor core
export type { Backend } from "./tensor/backends/backend.js";
export { setActiveBackend } from "./tensor/backends/current.js";
export { type BackendName, backend, getBackend, setBackend } from "./tensor/backends/index.js";
export {
  createWebGpuBackend,
  GpuArray,
  type WebGpuBackend,
} from "./tensor/backends/webgpu/index.js";
export * as ops from "./tensor/ops/index.js";
export {
  AdamW,
  clipFactor,
  clipFactorOf,
  cosineLr,
  gradNorm,
  PAPER_ADAMW,
  readGradNorm,
} from "./tensor/optim.js";
export { withArena, withArenaAsync } from "./tensor/pool.js";
export { Rng } from "./tensor/rng.js";
export {
  parseSafetensors,
  readSafetensorsFile,
  serializeSafetensors,
  writeSafetensorsFile,
} from "./tensor/safetensors.js";
export { intTensor, noGrad, ones, rand, randn, Tensor, tensor, zeros } from "./tensor/tensor.js";
// training
export { type RunOptions, runTraining } from "./train/run.js";
export {
  DATA_RUNS,
  DEFAULT_RUN,
  defaultRun,
  loadRunConfig,
  type RunConfig,
} from "./train/run-config.js";
export { DEFAULT_TRAIN, Trainer, type TrainSettings } from "./train/trainer.js";
export { trainVae } from "./train/vae-train.js";
export {
  codebookUsage,
  evaluateVqVae,
  evaluateVqVaeOnTestSplit,
  type TrainVqVaeOptions,
  trainVqVae,
} from "./train/vqvae-train.js";
