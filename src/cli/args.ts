/** Flag parsers shared by the commands; each error names the flag. */

/** Returns an integer ≥ 0 parsed from a flag value. */
export function parseNonNegativeInt(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} must be an integer ≥ 0, got "${v}"`);
  return n;
}

/** Returns a finite number parsed from a flag value. */
export function parseNumber(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`${flag} must be a number, got "${v}"`);
  return n;
}
