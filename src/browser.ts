/**
 * transfusion in a web page or a Web Worker: the same pipeline as in Node, loaded from URLs
 * (`TransfusionPipeline.fromUrl`) or from bytes (`fromFiles`), running on the js backend.
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
export { backend } from "./tensor/backends/current.js";
export { parseSafetensors } from "./tensor/safetensors-format.js";
