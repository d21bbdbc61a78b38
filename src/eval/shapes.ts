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

/** The relation seen from the other shape: "A above B" says what "B below A" says. */
const INVERSE: Record<string, string> = {
  "left of": "right of",
  "right of": "left of",
  above: "below",
  below: "above",
};

/**
 * Returns true when the caption `got` states every attribute the caption `want` does (both as
 * `parseShapeCaption` reads them): kind, colour, size and position of one shape; for two, both
 * shapes and their relation, in either order ("a red circle above a blue square" and "a blue
 * square below a red circle" are the same scene; the dataset words each pair one of those ways
 * at random, so word-for-word matching cannot tell a right caption from a wrong one half the
 * time).
 */
export function sameScene(want: Labels, got: Labels | null): boolean {
  if (!got || got.shapes !== want.shapes) return false;
  const keys = ["colour", "kind", "size", "position", "relation", "colour2", "kind2", "size2"];
  if (keys.every((k) => want[k] === got[k])) return true;
  if (want.shapes !== 2 || typeof got.relation !== "string") return false;
  const swapped: Labels = {
    shapes: 2,
    colour: got.colour2!,
    kind: got.kind2!,
    colour2: got.colour!,
    kind2: got.kind!,
    relation: INVERSE[got.relation]!,
  };
  if (got.size !== undefined) swapped.size2 = got.size;
  if (got.size2 !== undefined) swapped.size = got.size2;
  return keys.every((k) => want[k] === swapped[k]);
}
