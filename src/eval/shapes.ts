/**
 * The shapes rule for "the right scene": the unordered colour–kind pairs of its shapes, shared by
 * caption scoring and the evaluation classifier's targets.
 */
import type { Labels } from "../data/datasets/types.js";

/** Returns the sorted "colour kind" pairs of shapes labels (one or two). */
export function shapePairs(labels: Labels): string[] {
  const count = labels.shapes;
  if (count !== 1 && count !== 2)
    throw new Error(`shapes labels: field "shapes" must be 1 or 2, got ${JSON.stringify(count)}`);
  const pair = (colour: string, kind: string): string => {
    const c = labels[colour];
    const k = labels[kind];
    if (typeof c !== "string" || typeof k !== "string")
      throw new Error(`shapes labels: fields "${colour}" and "${kind}" must be strings`);
    return `${c} ${k}`;
  };
  const pairs = [pair("colour", "kind")];
  if (count === 2) pairs.push(pair("colour2", "kind2"));
  return pairs.sort();
}

/** Returns true when every shape in `want` appears in `got` with the same colour and kind. */
export function colourAndKindMatch(want: Labels, got: Labels | null): boolean {
  if (!got || got.shapes !== want.shapes) return false;
  return shapePairs(want).join("|") === shapePairs(got).join("|");
}
