/**
 * A built-in 5×9 bitmap font for printable ASCII, so captions under sample grids render the
 * same on every machine, including one with no fonts installed (libvips text needs them).
 * Each glyph is 5 columns; 7 rows above the baseline and 2 below for descenders.
 */
import type { Image } from "./image.js";

export const GLYPH_WIDTH = 5;
export const GLYPH_HEIGHT = 9;
/** Horizontal distance between the left edges of two characters (one blank column). */
export const CHAR_ADVANCE = GLYPH_WIDTH + 1;
/** Vertical distance between the tops of two lines of text (one blank row). */
export const LINE_ADVANCE = GLYPH_HEIGHT + 1;

// Rows from the top, '#' on and '.' off; missing trailing rows are blank.
const GLYPH_ROWS: Record<string, string> = {
  " ": "",
  "!": "..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#..",
  '"': ".#.#. .#.#. .#.#.",
  "#": ".#.#. .#.#. ##### .#.#. ##### .#.#. .#.#.",
  $: "..#.. .#### #.#.. .###. ..#.# ####. ..#..",
  "%": "##... ##..# ...#. ..#.. .#... #..## ...##",
  "&": ".##.. #..#. #.#.. .#... #.#.# #..#. .##.#",
  "'": "..#.. ..#.. .#...",
  "(": "...#. ..#.. .#... .#... .#... ..#.. ...#.",
  ")": ".#... ..#.. ...#. ...#. ...#. ..#.. .#...",
  "*": "..... ..#.. #.#.# .###. #.#.# ..#..",
  "+": "..... ..#.. ..#.. ##### ..#.. ..#..",
  ",": "..... ..... ..... ..... ..... .##.. ..#.. .#...",
  "-": "..... ..... ..... #####",
  ".": "..... ..... ..... ..... ..... .##.. .##..",
  "/": "..... ....# ...#. ..#.. .#... #....",
  "0": ".###. #...# #..## #.#.# ##..# #...# .###.",
  "1": "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
  "2": ".###. #...# ....# ...#. ..#.. .#... #####",
  "3": "##### ...#. ..#.. ...#. ....# #...# .###.",
  "4": "...#. ..##. .#.#. #..#. ##### ...#. ...#.",
  "5": "##### #.... ####. ....# ....# #...# .###.",
  "6": "..##. .#... #.... ####. #...# #...# .###.",
  "7": "##### ....# ...#. ..#.. .#... .#... .#...",
  "8": ".###. #...# #...# .###. #...# #...# .###.",
  "9": ".###. #...# #...# .#### ....# ...#. .##..",
  ":": "..... .##.. .##.. ..... .##.. .##..",
  ";": "..... .##.. .##.. ..... .##.. .##.. ..#.. .#...",
  "<": "...#. ..#.. .#... #.... .#... ..#.. ...#.",
  "=": "..... ..... ##### ..... #####",
  ">": ".#... ..#.. ...#. ....# ...#. ..#.. .#...",
  "?": ".###. #...# ....# ...#. ..#.. ..... ..#..",
  "@": ".###. #...# ....# .##.# #.#.# #.#.# .###.",
  A: ".###. #...# #...# ##### #...# #...# #...#",
  B: "####. #...# #...# ####. #...# #...# ####.",
  C: ".###. #...# #.... #.... #.... #...# .###.",
  D: "####. #...# #...# #...# #...# #...# ####.",
  E: "##### #.... #.... ####. #.... #.... #####",
  F: "##### #.... #.... ####. #.... #.... #....",
  G: ".###. #...# #.... #.### #...# #...# .####",
  H: "#...# #...# #...# ##### #...# #...# #...#",
  I: ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
  J: "..### ...#. ...#. ...#. ...#. #..#. .##..",
  K: "#...# #..#. #.#.. ##... #.#.. #..#. #...#",
  L: "#.... #.... #.... #.... #.... #.... #####",
  M: "#...# ##.## #.#.# #.#.# #...# #...# #...#",
  N: "#...# #...# ##..# #.#.# #..## #...# #...#",
  O: ".###. #...# #...# #...# #...# #...# .###.",
  P: "####. #...# #...# ####. #.... #.... #....",
  Q: ".###. #...# #...# #...# #.#.# #..#. .##.#",
  R: "####. #...# #...# ####. #.#.. #..#. #...#",
  S: ".#### #.... #.... .###. ....# ....# ####.",
  T: "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
  U: "#...# #...# #...# #...# #...# #...# .###.",
  V: "#...# #...# #...# #...# #...# .#.#. ..#..",
  W: "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.",
  X: "#...# #...# .#.#. ..#.. .#.#. #...# #...#",
  Y: "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..",
  Z: "##### ....# ...#. ..#.. .#... #.... #####",
  "[": ".###. .#... .#... .#... .#... .#... .###.",
  "\\": "..... #.... .#... ..#.. ...#. ....#",
  "]": ".###. ...#. ...#. ...#. ...#. ...#. .###.",
  "^": "..#.. .#.#. #...#",
  _: "..... ..... ..... ..... ..... ..... #####",
  "`": ".#... ..#.. ...#.",
  a: "..... ..... .###. ....# .#### #...# .####",
  b: "#.... #.... #.##. ##..# #...# #...# ####.",
  c: "..... ..... .###. #.... #.... #...# .###.",
  d: "....# ....# .##.# #..## #...# #...# .####",
  e: "..... ..... .###. #...# ##### #.... .###.",
  f: "..##. .#..# .#... ###.. .#... .#... .#...",
  g: "..... ..... .#### #...# #...# #...# .#### ....# .###.",
  h: "#.... #.... #.##. ##..# #...# #...# #...#",
  i: "..#.. ..... .##.. ..#.. ..#.. ..#.. .###.",
  j: "...#. ..... ..##. ...#. ...#. ...#. ...#. #..#. .##..",
  k: "#.... #.... #..#. #.#.. ##... #.#.. #..#.",
  l: ".##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
  m: "..... ..... ##.#. #.#.# #.#.# #.#.# #.#.#",
  n: "..... ..... #.##. ##..# #...# #...# #...#",
  o: "..... ..... .###. #...# #...# #...# .###.",
  p: "..... ..... ####. #...# #...# #...# ####. #.... #....",
  q: "..... ..... .#### #...# #...# #...# .#### ....# ....#",
  r: "..... ..... #.##. ##..# #.... #.... #....",
  s: "..... ..... .###. #.... .###. ....# ####.",
  t: ".#... .#... ###.. .#... .#... .#..# ..##.",
  u: "..... ..... #...# #...# #...# #..## .##.#",
  v: "..... ..... #...# #...# #...# .#.#. ..#..",
  w: "..... ..... #...# #...# #.#.# #.#.# .#.#.",
  x: "..... ..... #...# .#.#. ..#.. .#.#. #...#",
  y: "..... ..... #...# #...# #...# #...# .#### ....# .###.",
  z: "..... ..... ##### ...#. ..#.. .#... #####",
  "{": "...#. ..#.. ..#.. .#... ..#.. ..#.. ...#.",
  "|": "..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
  "}": ".#... ..#.. ..#.. ...#. ..#.. ..#.. .#...",
  "~": "..... ..... .#... #.#.# ...#.",
};

/** Drawn for characters the font lacks, so a missing glyph is visible rather than blank. */
const MISSING_ROWS = "##### #...# #...# #...# #...# #...# #####";

/** Returns the glyph bitmaps (GLYPH_HEIGHT × GLYPH_WIDTH, 1 = ink) parsed once at load. */
function parseGlyphs(): Map<string, Uint8Array> {
  const glyphs = new Map<string, Uint8Array>();
  const parse = (key: string, rows: string) => {
    const bits = new Uint8Array(GLYPH_WIDTH * GLYPH_HEIGHT);
    const list = rows === "" ? [] : rows.split(" ");
    if (list.length > GLYPH_HEIGHT || list.some((r) => r.length !== GLYPH_WIDTH)) {
      throw new Error(`font: glyph '${key}' is malformed`);
    }
    list.forEach((row, y) => {
      for (let x = 0; x < GLYPH_WIDTH; x++) bits[y * GLYPH_WIDTH + x] = row[x] === "#" ? 1 : 0;
    });
    glyphs.set(key, bits);
  };
  for (const [key, rows] of Object.entries(GLYPH_ROWS)) parse(key, rows);
  parse("\u0000missing", MISSING_ROWS);
  return glyphs;
}

const GLYPHS = parseGlyphs();

/**
 * Returns the text reduced to characters the font has: accents dropped (é → e), typographic
 * quotes and dashes made ASCII, anything else left for the missing-glyph box.
 */
export function toFontText(text: string): string {
  return text
    .normalize("NFD")
    .replace(/[\u0300-\u036f]/g, "")
    .replace(/[\u2018\u2019]/g, "'")
    .replace(/[\u201c\u201d]/g, '"')
    .replace(/[\u2013\u2014]/g, "-")
    .replace(/\s/g, " ");
}

/** Returns the bitmap for one character (the missing-glyph box if the font lacks it). */
export function glyphFor(ch: string): Uint8Array {
  return GLYPHS.get(ch) ?? GLYPHS.get("\u0000missing")!;
}

/** Returns the width in pixels of one line of text at the given scale. */
export function textWidth(text: string, scale = 1): number {
  const n = [...toFontText(text)].length;
  return n === 0 ? 0 : (n * CHAR_ADVANCE - 1) * scale;
}

/**
 * Returns the text broken into lines of at most `maxChars` characters, breaking at spaces
 * and splitting words longer than a line.
 */
export function wrapText(text: string, maxChars: number): string[] {
  if (maxChars < 1) return [];
  const words = toFontText(text)
    .split(" ")
    .filter((w) => w.length > 0);
  const lines: string[] = [];
  let line = "";
  for (let word of words) {
    while ([...word].length > maxChars) {
      if (line) lines.push(line);
      const chars = [...word];
      lines.push(chars.slice(0, maxChars).join(""));
      word = chars.slice(maxChars).join("");
      line = "";
    }
    if (!word) continue;
    if (!line) line = word;
    else if ([...line].length + 1 + [...word].length <= maxChars) line += ` ${word}`;
    else {
      lines.push(line);
      line = word;
    }
  }
  if (line) lines.push(line);
  return lines;
}

/**
 * Returns the image after drawing one line of text with its top-left corner at (x, y);
 * pixels falling outside the image are skipped.
 */
export function drawText(
  img: Image,
  text: string,
  x: number,
  y: number,
  colour: readonly number[],
  scale = 1,
): Image {
  const { width, height, channels, data } = img;
  let penX = x;
  for (const ch of toFontText(text)) {
    const bits = glyphFor(ch);
    for (let gy = 0; gy < GLYPH_HEIGHT; gy++) {
      for (let gx = 0; gx < GLYPH_WIDTH; gx++) {
        if (!bits[gy * GLYPH_WIDTH + gx]) continue;
        for (let sy = 0; sy < scale; sy++) {
          const py = y + gy * scale + sy;
          if (py < 0 || py >= height) continue;
          for (let sx = 0; sx < scale; sx++) {
            const px = penX + gx * scale + sx;
            if (px < 0 || px >= width) continue;
            const at = (py * width + px) * channels;
            for (let c = 0; c < channels; c++) data[at + c] = colour[c] ?? colour[0]!;
          }
        }
      }
    }
    penX += CHAR_ADVANCE * scale;
  }
  return img;
}
