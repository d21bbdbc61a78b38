/**
 * Shared helpers of the PyTorch parity tests: finding a python3 that imports torch, running the
 * scripts under python/tests/ with a timeout, temporary folders and error measures.
 *
 * Without python3 or torch the tests skip (scripts/setup.sh installs python3-torch); with the
 * environment variable CI set they fail instead, so CI cannot pass by skipping them.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (test/python/ is two levels down). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The Python package's folder (PYTHONPATH) and the folder of the scripts the tests run. */
export const PYTHON_DIR = join(ROOT, "python");
export const SCRIPTS_DIR = join(PYTHON_DIR, "tests");

const HINT = "scripts/setup.sh installs python3-torch";

/** Environment of every Python run: one thread, no __pycache__ written into python/. */
function pythonEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PYTHONPATH: PYTHON_DIR,
    PYTHONDONTWRITEBYTECODE: "1",
    OMP_NUM_THREADS: "1",
    MKL_NUM_THREADS: "1",
  };
}

let found: { python: string | null; why: string } | undefined;

/**
 * Returns the first interpreter that imports torch and numpy: $TRANSFUSION_PYTHON alone when
 * set, else python3 on the PATH, then /usr/bin/python3 (Debian's python3-torch lives there; a
 * pyenv python3 earlier on the PATH may lack it). `why` says what failed when none does.
 */
export function findPython(): { python: string | null; why: string } {
  if (found) return found;
  const forced = process.env.TRANSFUSION_PYTHON;
  const candidates = forced ? [forced] : ["python3", "/usr/bin/python3"];
  const failures: string[] = [];
  for (const python of candidates) {
    const r = spawnSync(python, ["-c", "import torch, numpy; print(torch.__version__)"], {
      encoding: "utf8",
      env: pythonEnv(),
      timeout: 60_000,
    });
    if (r.status === 0) return (found = { python, why: "" });
    const reason = r.error ? r.error.message : (r.stderr.trim().split("\n").at(-1) ?? "failed");
    failures.push(`${python}: ${reason}`);
  }
  return (found = { python: null, why: failures.join("; ") });
}

/**
 * Returns the `skip` option of a parity test: a message when no python3 with torch is found,
 * else false. Under CI it is always false, so the test runs and fails in `runPython`.
 */
export function skipWithoutTorch(): string | false {
  const { python, why } = findPython();
  if (python || process.env.CI) return false;
  return `no python3 with torch (${why}); ${HINT}`;
}

/**
 * Returns the stdout of python/tests/`script` run with `args` (parsed as JSON when `json`),
 * after it exits 0 within `timeoutMs`; throws with its stderr otherwise, or when no python3
 * with torch exists (the CI case).
 */
export function runPython(script: string, args: string[], timeoutMs = 120_000): string {
  return runInterpreter([join(SCRIPTS_DIR, script), ...args], script, timeoutMs);
}

/**
 * Returns the stdout of the python3 that has torch run with `args` (a script and its
 * arguments, or `-m module …`), after it exits 0 within `timeoutMs`; errors name `what`.
 */
export function runInterpreter(args: string[], what: string, timeoutMs = 120_000): string {
  const { python, why } = findPython();
  if (!python) throw new Error(`no python3 with torch (${why}); ${HINT}`);
  const r = spawnSync(python, args, {
    encoding: "utf8",
    env: pythonEnv(),
    cwd: ROOT,
    timeout: timeoutMs,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw new Error(`${what}: ${r.error.message}`);
  if (r.status !== 0) {
    throw new Error(`${what} exited with ${r.status ?? r.signal}:\n${r.stderr}`);
  }
  return r.stdout;
}

/** Returns the parsed JSON that python/tests/`script` prints. */
export function runPythonJson<T = unknown>(script: string, args: string[], timeoutMs?: number): T {
  return JSON.parse(runPython(script, args, timeoutMs)) as T;
}

/** Returns a fresh temporary folder. */
export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `tf-py-${prefix}-`));
}

/** Returns max |a − b| / max |a| (max |b| when a is all zero; 0 when both are). */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`relErr: lengths ${a.length} and ${b.length}`);
  let diff = 0;
  let scale = 0;
  let scaleB = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(a[i]!));
    scaleB = Math.max(scaleB, Math.abs(b[i]!));
  }
  const s = scale > 0 ? scale : scaleB;
  return s > 0 ? diff / s : 0;
}

/** Returns |a − b| / |a| for two numbers (|a − b| when a is 0). */
export function relErrScalar(a: number, b: number): number {
  return Math.abs(a - b) / (Math.abs(a) > 0 ? Math.abs(a) : 1);
}
