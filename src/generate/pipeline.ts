/**
 * The pipeline in Node: the class of ./pipeline-core.ts (which runs in a browser too) with
 * `TransfusionPipeline.load(dir)` reading a checkpoint folder. The folder's files go through
 * `fromFiles`, the one path every checkpoint takes into a pipeline, whatever it was read from
 * (./pipeline-load.ts, where this module installs its folder reader).
 */
import { join } from "node:path";
import { MODEL_FILE, readPipelineFiles, resolveCheckpointDir } from "../io/checkpoint.js";
import { SHIPPED_MODEL, shippedModelDir } from "../io/shipped.js";
import { TransfusionPipeline } from "./pipeline-core.js";
import { setCheckpointFolderLoader } from "./pipeline-load.js";

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
} from "./pipeline-core.js";

/** Returns the pipeline stored in the checkpoint folder `dir` (EMA weights); errors name the file. */
export function loadPipeline(dir: string): TransfusionPipeline {
  const found = resolveCheckpointDir(dir);
  if (!found)
    throw new Error(
      `${dir}: no checkpoint here (expected ${MODEL_FILE}); train one with \`transfusion train\``,
    );
  return TransfusionPipeline.fromFiles(readPipelineFiles(found), {
    source: found,
    where: (name) => join(found, name),
  });
}

/**
 * Returns the model shipped with the package (models/demo: the demo model in half precision,
 * made by `transfusion demo` and `transfusion release`; see its MODEL_CARD.md).
 */
export function loadPretrained(): TransfusionPipeline {
  const dir = shippedModelDir();
  if (!dir) throw new Error(`loadPretrained: this package holds no ${SHIPPED_MODEL}`);
  return loadPipeline(dir);
}

setCheckpointFolderLoader(loadPipeline);
