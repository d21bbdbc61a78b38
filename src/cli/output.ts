/** Terminal output helpers shared by the commands. */

/** Prints `obj` as the single JSON line a `--json` run ends with. */
export function printJson(obj: unknown): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

/** Returns rows of [label, value] formatted as an aligned two-column table. */
export function table(rows: Array<[string, string]>): string {
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join("\n");
}

/** Returns a progress callback writing to stderr (overwriting on a terminal), or a no-op. */
export function progressLine(quiet: boolean): (msg: string) => void {
  if (quiet) return () => {};
  const tty = process.stderr.isTTY;
  return (msg) => {
    if (tty) process.stderr.write(`\r\x1b[2K${msg}`);
    else process.stderr.write(`${msg}\n`);
  };
}

/** Ends a progress line on a terminal. */
export function endProgress(): void {
  if (process.stderr.isTTY) process.stderr.write("\r\x1b[2K");
}

/** Returns n formatted with `digits` decimals, or "n/a" for null. */
export function fmt(n: number | null, digits = 2): string {
  return n === null ? "n/a" : n.toFixed(digits);
}
