/** Loss curves as PNG (drawn here with the built-in bitmap font, no system fonts) and SVG. */
import { drawText } from "../data/font.js";
import { createImage, type Image } from "../data/image.js";

export interface Series {
  name: string;
  colour: [number, number, number];
  points: Array<[number, number]>;
}

export interface ChartOptions {
  width?: number;
  height?: number;
  title?: string;
  xLabel?: string;
  /** Plot log10(y) (losses span decades). */
  logY?: boolean;
}

const MARGIN = { left: 60, right: 16, top: 28, bottom: 36 };

function bounds(series: Series[], logY: boolean) {
  let x0 = Infinity;
  let x1 = -Infinity;
  let y0 = Infinity;
  let y1 = -Infinity;
  for (const s of series) {
    for (const [x, yRaw] of s.points) {
      const y = logY ? Math.log10(Math.max(yRaw, 1e-8)) : yRaw;
      if (!Number.isFinite(y)) continue;
      x0 = Math.min(x0, x);
      x1 = Math.max(x1, x);
      y0 = Math.min(y0, y);
      y1 = Math.max(y1, y);
    }
  }
  if (!Number.isFinite(x0)) return { x0: 0, x1: 1, y0: 0, y1: 1 };
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) y1 = y0 + 1;
  const pad = (y1 - y0) * 0.05;
  return { x0, x1, y0: y0 - pad, y1: y1 + pad };
}

function fmtTick(v: number, logY: boolean): string {
  const n = logY ? 10 ** v : v;
  if (Math.abs(n) >= 1000 || (Math.abs(n) < 0.01 && n !== 0)) return n.toExponential(0);
  return n.toFixed(Math.abs(n) < 1 ? 2 : 1);
}

/** Returns a white RGB image with the series drawn as lines, axes, ticks and a legend. */
export function renderChart(series: Series[], opts: ChartOptions = {}): Image {
  const W = opts.width ?? 640;
  const H = opts.height ?? 360;
  const logY = opts.logY ?? false;
  const img = createImage(W, H, 3);
  img.data.fill(255);
  const b = bounds(series, logY);
  const pw = W - MARGIN.left - MARGIN.right;
  const ph = H - MARGIN.top - MARGIN.bottom;
  const px = (x: number) => MARGIN.left + ((x - b.x0) / (b.x1 - b.x0)) * pw;
  const py = (y: number) => MARGIN.top + (1 - (y - b.y0) / (b.y1 - b.y0)) * ph;
  const grey: [number, number, number] = [200, 200, 200];
  const black: [number, number, number] = [40, 40, 40];
  for (let k = 0; k <= 4; k++) {
    const y = b.y0 + ((b.y1 - b.y0) * k) / 4;
    line(img, MARGIN.left, py(y), W - MARGIN.right, py(y), grey);
    drawText(img, fmtTick(y, logY), 4, Math.round(py(y)) - 4, black);
    const x = b.x0 + ((b.x1 - b.x0) * k) / 4;
    line(img, px(x), MARGIN.top, px(x), H - MARGIN.bottom, grey);
    drawText(img, String(Math.round(x)), Math.round(px(x)) - 10, H - MARGIN.bottom + 6, black);
  }
  line(img, MARGIN.left, MARGIN.top, MARGIN.left, H - MARGIN.bottom, black);
  line(img, MARGIN.left, H - MARGIN.bottom, W - MARGIN.right, H - MARGIN.bottom, black);
  if (opts.title) drawText(img, opts.title, MARGIN.left, 8, black);
  if (opts.xLabel)
    drawText(img, opts.xLabel, W - MARGIN.right - opts.xLabel.length * 6, H - 12, black);
  series.forEach((s, i) => {
    let prev: [number, number] | null = null;
    for (const [x, yRaw] of s.points) {
      const y = logY ? Math.log10(Math.max(yRaw, 1e-8)) : yRaw;
      if (!Number.isFinite(y)) continue;
      const p: [number, number] = [px(x), py(y)];
      if (prev) line(img, prev[0], prev[1], p[0], p[1], s.colour);
      prev = p;
    }
    const lx = W - MARGIN.right - 150;
    const ly = MARGIN.top + 6 + i * 14;
    line(img, lx, ly + 4, lx + 16, ly + 4, s.colour);
    drawText(img, s.name, lx + 22, ly, black);
  });
  return img;
}

/** Draws an anti-alias-free line (Bresenham) clipped to the image. */
function line(
  img: Image,
  xa: number,
  ya: number,
  xb: number,
  yb: number,
  c: readonly number[],
): void {
  let x0 = Math.round(xa);
  let y0 = Math.round(ya);
  const x1 = Math.round(xb);
  const y1 = Math.round(yb);
  const dx = Math.abs(x1 - x0);
  const dy = -Math.abs(y1 - y0);
  const sx = x0 < x1 ? 1 : -1;
  const sy = y0 < y1 ? 1 : -1;
  let err = dx + dy;
  for (;;) {
    if (x0 >= 0 && x0 < img.width && y0 >= 0 && y0 < img.height) {
      const at = (y0 * img.width + x0) * 3;
      img.data[at] = c[0]!;
      img.data[at + 1] = c[1]!;
      img.data[at + 2] = c[2]!;
    }
    if (x0 === x1 && y0 === y1) break;
    const e2 = 2 * err;
    if (e2 >= dy) {
      err += dy;
      x0 += sx;
    }
    if (e2 <= dx) {
      err += dx;
      y0 += sy;
    }
  }
}

/** Returns the same chart as an SVG document (for browsers and docs). */
export function chartSvg(series: Series[], opts: ChartOptions = {}): string {
  const W = opts.width ?? 640;
  const H = opts.height ?? 360;
  const logY = opts.logY ?? false;
  const b = bounds(series, logY);
  const pw = W - MARGIN.left - MARGIN.right;
  const ph = H - MARGIN.top - MARGIN.bottom;
  const px = (x: number) => (MARGIN.left + ((x - b.x0) / (b.x1 - b.x0)) * pw).toFixed(1);
  const py = (y: number) => (MARGIN.top + (1 - (y - b.y0) / (b.y1 - b.y0)) * ph).toFixed(1);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<title>${escapeXml(opts.title ?? "chart")}</title>`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
  ];
  for (let k = 0; k <= 4; k++) {
    const y = b.y0 + ((b.y1 - b.y0) * k) / 4;
    parts.push(
      `<line x1="${MARGIN.left}" x2="${W - MARGIN.right}" y1="${py(y)}" y2="${py(y)}" stroke="#ccc"/>`,
    );
    parts.push(`<text x="4" y="${py(y)}">${fmtTick(y, logY)}</text>`);
  }
  if (opts.title)
    parts.push(`<text x="${MARGIN.left}" y="16" font-size="13">${escapeXml(opts.title)}</text>`);
  series.forEach((s, i) => {
    const pts = s.points
      .map(([x, y]) => [x, logY ? Math.log10(Math.max(y, 1e-8)) : y] as const)
      .filter(([, y]) => Number.isFinite(y))
      .map(([x, y]) => `${px(x)},${py(y)}`)
      .join(" ");
    const col = `rgb(${s.colour.join(",")})`;
    parts.push(`<polyline fill="none" stroke="${col}" stroke-width="1.5" points="${pts}"/>`);
    parts.push(
      `<text x="${W - MARGIN.right - 130}" y="${MARGIN.top + 12 + i * 14}" fill="${col}">${escapeXml(s.name)}</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("\n");
}

function escapeXml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
