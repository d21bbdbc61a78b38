/**
 * Drawing for the `shapes` dataset: a small palette and a few shape kinds, rasterised with
 * signed distances so edges are anti-aliased (coverage = how far the pixel centre is inside).
 * The pixel checker draws the same templates to recognise shapes, so both live here.
 */
import { createImage, type Image } from "../image.js";

/** Shape kinds, each still recognisable at 8 pixels across. */
export const SHAPE_KINDS = ["circle", "square", "triangle", "diamond", "plus"] as const;
export type ShapeKind = (typeof SHAPE_KINDS)[number];

/** Colours far apart in RGB, including at the lighter mix an anti-aliased edge produces. */
export const SHAPE_COLOURS = {
  red: [215, 35, 35],
  orange: [245, 135, 20],
  yellow: [235, 200, 20],
  green: [35, 155, 55],
  blue: [35, 85, 220],
  purple: [135, 50, 185],
} as const satisfies Record<string, readonly [number, number, number]>;
export type ShapeColour = keyof typeof SHAPE_COLOURS;
export const SHAPE_COLOUR_NAMES = Object.keys(SHAPE_COLOURS) as ShapeColour[];

/** Light grey rather than white so yellow keeps a visible edge. */
export const SHAPE_BACKGROUND = [240, 240, 240] as const;

/** One shape to draw, in pixel units; (cx, cy) is the centre of its extent×extent box. */
export interface PlacedShape {
  kind: ShapeKind;
  rgb: readonly [number, number, number];
  cx: number;
  cy: number;
  extent: number;
}

/**
 * Returns the signed distance (pixels; negative inside) from offset (dx, dy) relative to the
 * shape's centre to the edge of a shape whose bounding box is 2·half on each side. Exact for
 * circle, square and diamond; for triangle and plus exact near edges, which is all the
 * one-pixel coverage ramp needs.
 */
export function shapeDistance(kind: ShapeKind, dx: number, dy: number, half: number): number {
  switch (kind) {
    case "circle":
      return Math.hypot(dx, dy) - half;
    case "square":
      return boxDistance(dx, dy, half, half);
    case "diamond":
      return (Math.abs(dx) + Math.abs(dy) - half) / Math.SQRT2;
    case "triangle": {
      // Apex up at (0, -half), base from (-half, half) to (half, half); the slanted edges
      // have outward normals (±2, -1)/√5 and pass through the apex.
      const slanted = (2 * Math.abs(dx) - (dy + half)) / Math.sqrt(5);
      return Math.max(slanted, dy - half);
    }
    case "plus": {
      const arm = half / 3;
      return Math.min(boxDistance(dx, dy, half, arm), boxDistance(dx, dy, arm, half));
    }
  }
}

function boxDistance(dx: number, dy: number, hx: number, hy: number): number {
  const qx = Math.abs(dx) - hx;
  const qy = Math.abs(dy) - hy;
  return Math.hypot(Math.max(qx, 0), Math.max(qy, 0)) + Math.min(Math.max(qx, qy), 0);
}

/** Returns the fraction in [0, 1] of the pixel centred at offset (dx, dy) the shape covers. */
export function shapeCoverage(kind: ShapeKind, dx: number, dy: number, half: number): number {
  const d = 0.5 - shapeDistance(kind, dx, dy, half);
  return Math.min(1, Math.max(0, d));
}

/** Returns a size×size RGB image of the shapes drawn in order over the background. */
export function renderShapes(size: number, shapes: readonly PlacedShape[]): Image {
  const img = createImage(size, size, 3);
  const data = img.data;
  const [br, bg, bb] = SHAPE_BACKGROUND;
  for (let p = 0; p < size * size; p++) {
    data[3 * p] = br;
    data[3 * p + 1] = bg;
    data[3 * p + 2] = bb;
  }
  for (const s of shapes) {
    const half = s.extent / 2;
    // Only pixels within a pixel of the bounding box can be touched.
    const x0 = Math.max(0, Math.floor(s.cx - half - 1));
    const x1 = Math.min(size - 1, Math.ceil(s.cx + half + 1));
    const y0 = Math.max(0, Math.floor(s.cy - half - 1));
    const y1 = Math.min(size - 1, Math.ceil(s.cy + half + 1));
    const [r, g, b] = s.rgb;
    for (let y = y0; y <= y1; y++) {
      const dy = y + 0.5 - s.cy;
      for (let x = x0; x <= x1; x++) {
        const a = shapeCoverage(s.kind, x + 0.5 - s.cx, dy, half);
        if (a === 0) continue;
        const at = 3 * (y * size + x);
        data[at] = Math.round(data[at]! + a * (r - data[at]!));
        data[at + 1] = Math.round(data[at + 1]! + a * (g - data[at + 1]!));
        data[at + 2] = Math.round(data[at + 2]! + a * (b - data[at + 2]!));
      }
    }
  }
  return img;
}
