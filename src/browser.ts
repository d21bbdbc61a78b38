/**
 * transfusion in a web page or a Web Worker: the same pipeline as in Node, loaded from URLs
 * (`TransfusionPipeline.fromUrl`) or from bytes (`fromFiles`), running on the js backend; and
 * the pieces of a training step on the webgpu backend (`createWebGpuBackend`, the model, its
 * loss, AdamW and the asynchronous reads), for loops that await their reads.
 *
 * Nothing reachable from here imports Node (no `node:` modules, no sharp, no native addon;
 * test/web/graph.test.ts bundles this file for the browser to hold it so). Loading a folder
 * with `TransfusionPipeline.load(dir)`, decoding image files and training are Node's: import
 * the package's main entry there.
 */

export {
  checkImage,
  convertChannels,
  createImage,
  floatToImage,
  type Image,
  imageToFloat,
  toRgb,
} from "./data/pixels.js";
export { BpeTokenizer as Tokenizer } from "./data/tokenizer-core.js";
export type { SamplerKind } from "./diffusion/config.js";
export { cosineSchedule } from "./diffusion/schedule.js";
export {
  type CheckpointFiles,
  type CompleteOptions,
  DEFAULT_IMAGE_OPTIONS,
  type FromFilesOptions,
  type FromUrlOptions,
  type GeneratedPart,
  type ImageOptions,
  type LoadProgress,
  TransfusionPipeline,
} from "./generate/pipeline-core.js";
export {
  normalisePrompt,
  type PromptStyle,
  promptStyle,
  unseenWords,
} from "./generate/prompt.js";
export { GREEDY, type TextSampling } from "./generate/sampling.js";
export { CONFIG_FILE, MODEL_FILE, pipelineFiles, TOKENIZER_FILE } from "./io/checkpoint-format.js";
export { makeConfig, type TransfusionConfig } from "./model/config.js";
export {
  type LossParts,
  lossValues,
  readLossValues,
  type TransfusionBatch,
  transfusionLoss,
} from "./model/loss.js";
export { Transfusion } from "./model/transfusion.js";
export { backend, setActiveBackend } from "./tensor/backends/current.js";
export {
  createWebGpuBackend,
  GpuArray,
  type WebGpuBackend,
  webGpuBackend,
} from "./tensor/backends/webgpu/index.js";
export { AdamW, clipFactorOf, readGradNorm } from "./tensor/optim.js";
export { withArena, withArenaAsync } from "./tensor/pool.js";
export { Rng } from "./tensor/rng.js";
export { parseSafetensors } from "./tensor/safetensors-format.js";
export { Tensor } from "./tensor/tensor.js";
