/**
 * Evaluation classifiers: one small CNN per dataset, trained on real images, that judges
 * whether a generated image shows what its caption says (class per head) and supplies the
 * penultimate features FID is computed on. This file only gathers the public names, so
 * callers have one import path; the parts are:
 *
 * - classifier-spec.ts: datasets, heads and widths (the spec), its checks, folder names;
 * - classifier-model.ts: the CNN (`EvalClassifier`: forward, targets, predict);
 * - classifier-train.ts: training, held-out measurement, `ensureClassifier`;
 * - classifier-files.ts: `classifier.safetensors` + `classifier.json`, the cache folder.
 */
export {
  CLASSIFIER_JSON_FILE,
  CLASSIFIER_WEIGHTS_FILE,
  type ClassifierReport,
  defaultClassifierRoot,
  loadClassifier,
  saveClassifier,
} from "./classifier-files.js";
export { EvalClassifier } from "./classifier-model.js";
export {
  CLASSIFIER_DATASETS,
  type ClassifierDataset,
  type ClassifierHead,
  type ClassifierSpec,
  checkClassifierSpec,
  classifierDirName,
  classifierSpecFor,
  classifierSpecForName,
  datasetForSpec,
  isClassifierDataset,
  NO_SECOND_SHAPE,
  type ShapesDifficulty,
  shapePairClasses,
} from "./classifier-spec.js";
export {
  CLASSIFIER_TRAIN_DEFAULTS,
  type ClassifierProgress,
  ensureClassifier,
  measureClassifier,
  type TrainClassifierOptions,
  trainClassifier,
} from "./classifier-train.js";
