/**
 * Evaluation classifier files: `classifier.safetensors` (weights; spec in the metadata) and
 * `classifier.json` (spec, held-out report and training settings), each written atomically,
 * the JSON last, and read back with every field and tensor checked.
 */
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { cacheRoot } from "../data/cache.js";
import { writeFileAtomic } from "../tensor/atomic-write.js";
import { Rng } from "../tensor/rng.js";
import { readSafetensorsFile, writeSafetensorsFile } from "../tensor/safetensors.js";
import { EvalClassifier } from "./classifier-model.js";
import { checkClassifierSpec } from "./classifier-spec.js";

/** File names inside a classifier folder. */
export const CLASSIFIER_WEIGHTS_FILE = "classifier.safetensors";
export const CLASSIFIER_JSON_FILE = "classifier.json";
const CLASSIFIER_FORMAT = "transfusion-classifier/1";

/** What a classifier scored on held-out images; stored in classifier.json beside its spec. */
export interface ClassifierReport {
  dataset: string;
  difficulty?: string;
  testImages: number;
  /** Fraction of held-out images with every head right. */
  accuracy: number;
  headAccuracy: Record<string, number>;
  steps: number;
  /** Seconds of the training loop (not counting the held-out measurement). */
  seconds: number;
}

/**
 * Returns the folder where classifiers are kept unless a caller names one: `classifiers/` in
 * the package's cache folder, so every run folder and working directory shares them.
 */
export function defaultClassifierRoot(): string {
  return join(cacheRoot(), "classifiers");
}

/**
 * Returns nothing; writes `dir/classifier.safetensors` (weights by dotted name, the spec in the
 * metadata) and then `dir/classifier.json` (format, spec, report, `training` settings, parameter
 * count), each atomically. The JSON is written last, so its presence marks a complete folder.
 */
export function saveClassifier(
  c: EvalClassifier,
  dir: string,
  report: ClassifierReport,
  training: Record<string, unknown> = {},
): void {
  mkdirSync(dir, { recursive: true });
  const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [name, t] of c.namedParameters()) tensors[name] = { shape: [...t.shape], data: t.f32 };
  writeSafetensorsFile(join(dir, CLASSIFIER_WEIGHTS_FILE), tensors, {
    format: CLASSIFIER_FORMAT,
    spec: JSON.stringify(c.spec),
  });
  const doc = {
    format: CLASSIFIER_FORMAT,
    spec: c.spec,
    report,
    training,
    parameters: c.parameterCount(),
  };
  writeFileAtomic(join(dir, CLASSIFIER_JSON_FILE), [
    new TextEncoder().encode(`${JSON.stringify(doc, null, 2)}\n`),
  ]);
}

/**
 * Returns the classifier stored in `dir` and its report. The spec in classifier.json must
 * equal the one in the weights' metadata and every tensor must have the shape it implies;
 * errors name the file and the field or tensor.
 */
export function loadClassifier(dir: string): {
  classifier: EvalClassifier;
  report: ClassifierReport;
} {
  const jsonPath = join(dir, CLASSIFIER_JSON_FILE);
  let text: string;
  try {
    text = readFileSync(jsonPath, "utf8");
  } catch (err) {
    throw new Error(`${jsonPath}: cannot read classifier file: ${(err as Error).message}`, {
      cause: err,
    });
  }
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`${jsonPath}: not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc))
    throw new Error(`${jsonPath}: must hold a JSON object`);
  if (doc.format !== CLASSIFIER_FORMAT)
    throw new Error(
      `${jsonPath}: field "format" is ${JSON.stringify(doc.format)}, expected "${CLASSIFIER_FORMAT}"`,
    );
  const spec = checkClassifierSpec(doc.spec, jsonPath);
  const report = checkReport(doc.report, jsonPath);

  const file = join(dir, CLASSIFIER_WEIGHTS_FILE);
  const { tensors, metadata } = readSafetensorsFile(file);
  if (metadata.format !== CLASSIFIER_FORMAT)
    throw new Error(
      `${file}: metadata field "__metadata__.format" is ${JSON.stringify(metadata.format)}, expected "${CLASSIFIER_FORMAT}"`,
    );
  if (metadata.spec !== JSON.stringify(spec))
    throw new Error(
      `${file}: metadata field "__metadata__.spec" differs from the spec in ${jsonPath}; the two files do not belong together`,
    );
  const classifier = new EvalClassifier(spec, new Rng(0));
  const expected = new Set<string>();
  for (const [name, t] of classifier.namedParameters()) {
    expected.add(name);
    const e = tensors[name];
    if (!e) throw new Error(`${file}: missing tensor "${name}" (shape [${t.shape.join(", ")}])`);
    if (e.dtype !== "F32" && e.dtype !== "F16" && e.dtype !== "BF16" && e.dtype !== "F64")
      throw new Error(`${file}: tensor "${name}" has dtype ${e.dtype}, expected a float type`);
    if (e.shape.join() !== t.shape.join())
      throw new Error(
        `${file}: tensor "${name}" has shape [${e.shape.join(", ")}], expected [${t.shape.join(", ")}]`,
      );
    t.f32.set(e.data as Float32Array);
  }
  for (const name of Object.keys(tensors))
    if (!expected.has(name)) throw new Error(`${file}: unexpected tensor "${name}"`);
  return { classifier, report };
}

function checkReport(r: unknown, where: string): ClassifierReport {
  const fail = (msg: string): never => {
    throw new Error(`${where}: ${msg}`);
  };
  if (typeof r !== "object" || r === null || Array.isArray(r))
    return fail('field "report" must be a JSON object');
  const rep = r as Record<string, unknown>;
  if (typeof rep.dataset !== "string") fail('field "report.dataset" must be a string');
  for (const key of ["testImages", "accuracy", "steps", "seconds"])
    if (typeof rep[key] !== "number") fail(`field "report.${key}" must be a number`);
  if (typeof rep.headAccuracy !== "object" || rep.headAccuracy === null)
    fail('field "report.headAccuracy" must be an object');
  return rep as unknown as ClassifierReport;
}
