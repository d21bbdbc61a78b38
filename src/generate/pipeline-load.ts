/**
 * How a checkpoint becomes the parts of a `TransfusionPipeline`, behind its static `fromFiles`,
 * `fromUrl` and `load`. One parsing path, `readCheckpointFiles` (the files' contents by name),
 * runs every check of a load; `fetchCheckpointFiles` gathers those files from URLs, and in Node
 * a folder reader installed by ./pipeline.ts reads them from disk.
 *
 * Imports nothing from Node, so it runs in a web page or a Web Worker (see src/browser.ts).
 */
import { BpeTokenizer } from "../data/tokenizer-core.js";
import {
  CONFIG_FILE,
  checkFingerprints,
  checkpointAutoencoderFile,
  loadModuleTensors,
  MODEL_FILE,
  parseCheckpointConfig,
  parseJson,
  pipelineFiles,
  TOKENIZER_FILE,
} from "../io/checkpoint-format.js";
import { vaeFromSafetensors } from "../io/vae-format.js";
import { VQVAE_WEIGHTS_FILE, vqvaeFromSafetensors } from "../io/vqvae-format.js";
import { Transfusion } from "../model/transfusion.js";
import type { Vae } from "../model/vae.js";
import type { VqVae } from "../model/vqvae.js";
import { Rng } from "../tensor/rng.js";
import { parseSafetensors } from "../tensor/safetensors-format.js";
// Type only: the class delegates here, and this module never builds one itself.
import type { TransfusionPipeline } from "./pipeline-core.js";

/** A checkpoint's files by name: config.json and tokenizer.json as text or UTF-8 bytes, weights as bytes. */
export type CheckpointFiles = Readonly<Record<string, Uint8Array | string>>;

/** Where checkpoint files came from, for messages and `pipeline.source`. */
export interface FromFilesOptions {
  /** The folder or URL the files came from (default "(files)"). */
  source?: string;
  /** Returns how messages name file `name` (default `${source}/${name}`). */
  where?: (name: string) => string;
}

/** Progress of `fromUrl`: bytes received so far over all files, and the file that received them. */
export interface LoadProgress {
  file: string;
  loaded: number;
  /** Sum of the files' sizes, once every response has announced its size (else null). */
  total: number | null;
}

export interface FromUrlOptions {
  onProgress?: (p: LoadProgress) => void;
  /** The fetch to use (default globalThis.fetch). */
  fetch?: typeof fetch;
}

/** What a checkpoint holds, in the order of `TransfusionPipeline`'s constructor arguments. */
export interface PipelineParts {
  model: Transfusion;
  tokenizer: BpeTokenizer;
  vae: Vae | VqVae | null;
  source: string;
  /** The sequence length the model was trained on (the mixer's seqLen), if recorded. */
  contextLength: number | null;
  /** The checkpoint's config.json as stored. */
  checkpointConfig: Readonly<Record<string, unknown>>;
}

/** Reads a checkpoint folder in Node (installed by ./pipeline.ts); null where there are no files. */
let folderLoader: ((dir: string) => TransfusionPipeline) | null = null;

/** Installs what `TransfusionPipeline.load(dir)` runs (Node's ./pipeline.ts does). */
export function setCheckpointFolderLoader(load: (dir: string) => TransfusionPipeline): void {
  folderLoader = load;
}

/**
 * Returns the pipeline in the checkpoint folder `dir` through the installed folder reader;
 * throws, pointing at `fromUrl` and `fromFiles`, where none is (a web page).
 */
export function loadCheckpointFolder(dir: string): TransfusionPipeline {
  if (!folderLoader) {
    throw new Error(
      `TransfusionPipeline.load("${dir}") reads a folder, which needs Node (import the package's main entry there); in a web page use TransfusionPipeline.fromUrl(url) or fromFiles(files)`,
    );
  }
  return folderLoader(dir);
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Returns the parts held by a checkpoint's files (see `pipelineFiles`), after every check of a
 * load: format and version, the model config, fingerprints of the tokenizer and autoencoder,
 * every tensor's shape and finiteness. Errors name the file as `options.where` does.
 */
export function readCheckpointFiles(
  files: CheckpointFiles,
  options: FromFilesOptions = {},
): PipelineParts {
  const source = options.source ?? "(files)";
  const where = options.where ?? ((name: string) => `${source}/${name}`);
  const get = (name: string): Uint8Array | string => {
    const v = Object.hasOwn(files, name) ? files[name] : undefined;
    if (v === undefined) throw new Error(`${where(name)}: missing from the checkpoint's files`);
    return v;
  };
  const text = (name: string): string => {
    const v = get(name);
    if (typeof v === "string") return v;
    try {
      return strictUtf8.decode(v);
    } catch {
      throw new Error(`${where(name)}: not valid UTF-8`);
    }
  };
  const bytes = (name: string): Uint8Array => {
    const v = get(name);
    if (typeof v === "string") throw new Error(`${where(name)}: expected bytes, got text`);
    return v;
  };
  const configPath = where(CONFIG_FILE);
  const cfg = parseCheckpointConfig(parseJson(text(CONFIG_FILE), configPath), configPath);
  const tokenizer = BpeTokenizer.fromText(text(TOKENIZER_FILE), where(TOKENIZER_FILE));
  const aeFile = checkpointAutoencoderFile(cfg);
  let vae: Vae | VqVae | null = null;
  if (aeFile !== null) {
    const st = parseSafetensors(bytes(aeFile), where(aeFile));
    vae =
      aeFile === VQVAE_WEIGHTS_FILE
        ? vqvaeFromSafetensors(st, where(aeFile))
        : vaeFromSafetensors(st, where(aeFile));
  }
  checkFingerprints(cfg, tokenizer, vae, where);
  const model = new Transfusion(cfg.model, new Rng(0));
  const weights = where(MODEL_FILE);
  loadModuleTensors(model, parseSafetensors(bytes(MODEL_FILE), weights), weights);
  const mixer = cfg.raw.mixer as { seqLen?: unknown } | undefined;
  const contextLength = typeof mixer?.seqLen === "number" ? mixer.seqLen : null;
  return { model, tokenizer, vae, source, contextLength, checkpointConfig: cfg.raw };
}

/**
 * Returns the files of the checkpoint folder served at `baseUrl` (e.g. "/model/") with how to
 * name them: fetches config.json, then the files it names, all at once. `onProgress` hears
 * about every chunk received. Runs in a browser, a Web Worker or Node.
 */
export async function fetchCheckpointFiles(
  baseUrl: string | URL,
  options: FromUrlOptions = {},
): Promise<{ files: CheckpointFiles; source: string; where: (name: string) => string }> {
  const doFetch = options.fetch ?? globalThis.fetch;
  const here = (globalThis as { location?: { href: string } }).location?.href;
  const base = new URL(String(baseUrl), here);
  if (!base.pathname.endsWith("/")) base.pathname += "/";
  const where = (name: string) => new URL(name, base).href;
  const configText = new TextDecoder().decode(await fetchBytes(doFetch, where(CONFIG_FILE)));
  const cfg = parseCheckpointConfig(parseJson(configText, where(CONFIG_FILE)), where(CONFIG_FILE));
  const names = pipelineFiles(cfg).filter((n) => n !== CONFIG_FILE);
  const loaded = new Map<string, number>();
  const sizes = new Map<string, number | null>();
  const report = (file: string) => {
    if (!options.onProgress) return;
    let sum = 0;
    for (const v of loaded.values()) sum += v;
    const known = [...sizes.values()];
    const total =
      known.length === names.length && known.every((s) => s !== null)
        ? known.reduce<number>((a, b) => a + b!, 0)
        : null;
    options.onProgress({ file, loaded: sum, total });
  };
  const bodies = await Promise.all(
    names.map((name) =>
      fetchBytes(doFetch, where(name), (got, size) => {
        loaded.set(name, got);
        sizes.set(name, size);
        report(name);
      }),
    ),
  );
  const files: Record<string, Uint8Array | string> = { [CONFIG_FILE]: configText };
  names.forEach((n, i) => {
    files[n] = bodies[i]!;
  });
  return { files, source: base.href, where };
}

/**
 * Returns the body of `url` as bytes, reporting (bytes so far, announced size or null) as
 * chunks arrive; errors name the URL and the HTTP status.
 */
async function fetchBytes(
  doFetch: typeof fetch,
  url: string,
  onChunk?: (loaded: number, size: number | null) => void,
): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await doFetch(url);
  } catch (err) {
    throw new Error(`${url}: cannot fetch (${(err as Error).message})`, { cause: err });
  }
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status} ${res.statusText}`.trimEnd());
  // A compressed response announces its compressed length, not the bytes we will count.
  const header = res.headers.get("content-length");
  const encoding = res.headers.get("content-encoding");
  const plain = encoding === null || encoding === "identity";
  const size = plain && header !== null && /^\d+$/.test(header) ? Number(header) : null;
  if (!res.body) {
    const all = new Uint8Array(await res.arrayBuffer());
    onChunk?.(all.length, size);
    return all;
  }
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  onChunk?.(0, size);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    onChunk?.(loaded, size);
  }
  // One buffer of exactly the file, starting at offset 0, so float weights can be read in place.
  const out = new Uint8Array(loaded);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
