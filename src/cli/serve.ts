/**
 * `transfusion serve` and `transfusion export-web`: the web app (built by
 * scripts/build-web.mjs into dist/web/) with a checkpoint's files beside it under `model/`.
 * The model runs in the visitor's browser; the server only hands out files, so any static file
 * host serves an exported folder just as well.
 */
import {
  copyFileSync,
  createReadStream,
  existsSync,
  mkdirSync,
  readdirSync,
  rmdirSync,
  rmSync,
  statSync,
} from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { basename, dirname, extname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { writeFileAtomic } from "../data/image.js";
import {
  pipelineFiles,
  readCheckpointConfig,
  readJson,
  resolveCheckpointDir,
} from "../io/checkpoint.js";
import { shippedModelDir } from "../io/shipped.js";
import { VAE_JSON_FILE, VAE_WEIGHTS_FILE } from "../io/vae-files.js";
import { VQVAE_JSON_FILE, VQVAE_WEIGHTS_FILE } from "../io/vqvae-files.js";
import { parseInteger } from "./args.js";
import { addCheckpointFlag, addRunFlags, checkpointOrShipped } from "./flags.js";
import { printJson } from "./output.js";

/** Environment variable naming another folder to serve the app from (development, tests). */
export const WEB_DIR_ENV = "TRANSFUSION_WEB_DIR";
/** The URL folder, relative to the page, holding the checkpoint's files. */
export const MODEL_FOLDER = "model";
/** Model cards shown by the page when found beside the checkpoint. */
export const MODEL_CARD_FILES = ["MODEL_CARD.md", "model-card.json"] as const;
/**
 * The list of the checkpoint's files under `model/`, so the page asks only for those there (a
 * request for a missing model card would show as an error in the browser's console).
 */
export const MODEL_INDEX_FILE = "files.json";
/** The list of files an export wrote, so the next export into the folder replaces them. */
export const EXPORT_MANIFEST = "export-web.json";

/** Returns the package root: two levels above this file in both src/cli and dist/cli. */
function packageRoot(): string {
  return join(dirname(fileURLToPath(import.meta.url)), "..", "..");
}

/** Returns the folder of the built web app ($TRANSFUSION_WEB_DIR, else dist/web/). */
export function webAppDir(): string {
  const dir = resolve(process.env[WEB_DIR_ENV] || join(packageRoot(), "dist", "web"));
  if (!existsSync(join(dir, "index.html"))) {
    throw new Error(
      `${dir}: the web app is not built (no index.html there); run \`npm run build\``,
    );
  }
  return dir;
}

/**
 * Returns the checkpoint folder to serve for a --checkpoint value, or the shipped model without
 * one (checkpointOrShipped), resolved to DIR.old when a crash between the two renames of a
 * checkpoint save left it there. `serve`, `export-web` and `bench web` read it this way.
 */
export function servedCheckpoint(flag: string | undefined): string {
  const folder = checkpointOrShipped(flag);
  return resolveCheckpointDir(folder) ?? folder;
}

/** Adds --checkpoint, required unless a default checkpoint exists. */
function addWebCheckpointFlag(cmd: Command): Command {
  return addCheckpointFlag(cmd, { shipped: shippedModelDir() !== null });
}

/**
 * Returns the files the page reads from the checkpoint folder `checkpoint`, by their name under
 * `model/`, with their paths: those a pipeline loads (config.json, tokenizer.json, the
 * autoencoder's weights, model.safetensors), the autoencoder's JSON description, and a model
 * card found in the checkpoint folder or, for a run's `checkpoint/`, in the run folder. Never
 * the training state.
 */
export function modelFiles(checkpoint: string): Map<string, string> {
  const files = new Map<string, string>();
  const names = pipelineFiles(readCheckpointConfig(checkpoint));
  for (const name of names) files.set(name, join(checkpoint, name));
  const described: Array<[string, string]> = [
    [VAE_WEIGHTS_FILE, VAE_JSON_FILE],
    [VQVAE_WEIGHTS_FILE, VQVAE_JSON_FILE],
  ];
  for (const [weights, json] of described) {
    if (names.includes(weights) && existsSync(join(checkpoint, json))) {
      files.set(json, join(checkpoint, json));
    }
  }
  const places = [checkpoint];
  if (/^checkpoint(\.old)?$/.test(basename(checkpoint))) places.push(dirname(checkpoint));
  for (const card of MODEL_CARD_FILES) {
    const found = places.map((d) => join(d, card)).find((p) => existsSync(p));
    if (found) files.set(card, found);
  }
  for (const [name, path] of files) {
    if (!existsSync(path)) throw new Error(`${path}: missing, but the checkpoint needs ${name}`);
  }
  return files;
}

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".md": "text/markdown; charset=utf-8",
  ".png": "image/png",
  ".safetensors": "application/octet-stream",
};

/** Returns true when `name` is a plain file name (no folder part, not . or ..). */
function isPlainName(name: string): boolean {
  return name !== "" && name !== "." && name !== ".." && !/[/\\\0]/.test(name);
}

export interface WebServer {
  /** The page's address, e.g. http://127.0.0.1:7860/ */
  url: string;
  close(): Promise<void>;
}

/**
 * Returns once an HTTP server on host:port (0: any free port) serves the app in `webDir` at /
 * and the checkpoint's `modelFiles` under /model/. GET and HEAD only; nothing else is reachable.
 */
export async function startWebServer(o: {
  webDir: string;
  checkpoint: string;
  host: string;
  port: number;
}): Promise<WebServer> {
  const model = modelFiles(o.checkpoint);
  const index = modelIndex(model);
  const server = createServer((req, res) => {
    try {
      handle(req, res, o.webDir, model, index);
    } catch (err) {
      send(res, 500, `server error: ${(err as Error).message}`);
    }
  });
  await new Promise<void>((ok, fail) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      fail(
        new Error(
          err.code === "EADDRINUSE"
            ? `--port ${o.port}: ${o.host}:${o.port} is in use; choose another port (--port 0 picks a free one)`
            : `cannot listen on ${o.host}:${o.port}: ${err.message}`,
        ),
      ),
    );
    server.listen(o.port, o.host, () => ok());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : o.port;
  const host = o.host.includes(":") ? `[${o.host}]` : o.host;
  return {
    url: `http://${host}:${port}/`,
    close: () =>
      new Promise<void>((ok) => {
        server.close(() => ok());
        server.closeAllConnections();
      }),
  };
}

function send(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8" });
  res.end(`${text}\n`);
}

/** Returns the text of model/files.json for the files served under model/. */
function modelIndex(model: Map<string, string>): string {
  return `${JSON.stringify({ files: [...model.keys()] }, null, 2)}\n`;
}

function handle(
  req: IncomingMessage,
  res: ServerResponse,
  webDir: string,
  model: Map<string, string>,
  index: string,
): void {
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.setHeader("Allow", "GET, HEAD");
    send(res, 405, "only GET and HEAD");
    return;
  }
  let path: string;
  try {
    path = decodeURIComponent(new URL(req.url ?? "/", "http://localhost").pathname);
  } catch {
    send(res, 400, "bad path");
    return;
  }
  const parts = path.split("/").filter((p) => p !== "");
  if (parts.length === 2 && parts[0] === MODEL_FOLDER && parts[1] === MODEL_INDEX_FILE) {
    const body = Buffer.from(index);
    res.writeHead(200, {
      "Content-Type": CONTENT_TYPES[".json"]!,
      "Content-Length": body.length,
      "Cache-Control": "no-cache",
    });
    res.end(req.method === "HEAD" ? undefined : body);
    return;
  }
  let file: string | undefined;
  if (parts.length === 0) file = join(webDir, "index.html");
  else if (parts.length === 1 && isPlainName(parts[0]!)) file = join(webDir, parts[0]!);
  else if (parts.length === 2 && parts[0] === MODEL_FOLDER) file = model.get(parts[1]!);
  if (file === undefined || !existsSync(file) || !statSync(file).isFile()) {
    send(res, 404, `not found: ${path}`);
    return;
  }
  res.writeHead(200, {
    "Content-Type": CONTENT_TYPES[extname(file)] ?? "application/octet-stream",
    "Content-Length": statSync(file).size,
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
  });
  if (req.method === "HEAD") {
    res.end();
    return;
  }
  createReadStream(file).pipe(res);
}

/**
 * Returns the files written (relative to `out`): the app from `webDir` and the checkpoint's
 * `modelFiles` under `model/`, plus export-web.json listing them. `out` must be empty, new, or
 * an earlier export, whose files are replaced (nothing else in it is touched).
 */
export async function exportWeb(o: {
  webDir: string;
  checkpoint: string;
  out: string;
}): Promise<string[]> {
  const out = resolve(o.out);
  const model = modelFiles(o.checkpoint);
  const manifest = join(out, EXPORT_MANIFEST);
  if (existsSync(out) && readdirSync(out).length > 0 && !existsSync(manifest)) {
    throw new Error(
      `--out ${o.out}: the folder is not empty and holds no ${EXPORT_MANIFEST} of an earlier export; choose an empty or new folder`,
    );
  }
  for (const f of previousExport(manifest)) rmSync(join(out, f), { force: true });
  if (existsSync(join(out, MODEL_FOLDER)) && readdirSync(join(out, MODEL_FOLDER)).length === 0) {
    rmdirSync(join(out, MODEL_FOLDER));
  }
  mkdirSync(join(out, MODEL_FOLDER), { recursive: true });
  const written: string[] = [];
  for (const name of readdirSync(o.webDir)) {
    if (!statSync(join(o.webDir, name)).isFile()) continue;
    copyFileSync(join(o.webDir, name), join(out, name));
    written.push(name);
  }
  for (const [name, path] of model) {
    copyFileSync(path, join(out, MODEL_FOLDER, name));
    written.push(`${MODEL_FOLDER}/${name}`);
  }
  await writeFileAtomic(join(out, MODEL_FOLDER, MODEL_INDEX_FILE), modelIndex(model));
  written.push(`${MODEL_FOLDER}/${MODEL_INDEX_FILE}`);
  await writeFileAtomic(
    manifest,
    `${JSON.stringify({ checkpoint: o.checkpoint, files: written }, null, 2)}\n`,
  );
  return written;
}

/** Returns the files an earlier export listed in `manifest` (none without one). */
function previousExport(manifest: string): string[] {
  if (!existsSync(manifest)) return [];
  const raw = readJson(manifest) as { files?: unknown };
  if (!Array.isArray(raw?.files)) {
    throw new Error(`${manifest}: field "files" must be a list; remove the file to go on`);
  }
  return raw.files.map((f, i) => {
    const parts = typeof f === "string" ? f.split("/") : [];
    const ok =
      (parts.length === 1 && isPlainName(parts[0]!)) ||
      (parts.length === 2 && parts[0] === MODEL_FOLDER && isPlainName(parts[1]!));
    if (!ok) {
      throw new Error(
        `${manifest}: files[${i}] must be a file of the export, got ${JSON.stringify(f)}; remove the file to go on`,
      );
    }
    return f as string;
  });
}

export function registerServe(program: Command): void {
  const serve = program
    .command("serve")
    .description(
      "serve the web app and a checkpoint on http://HOST:PORT/; the model runs in the visitor's browser, nothing is computed here",
    );
  addWebCheckpointFlag(serve)
    .option(
      "--port <n>",
      "port to listen on (0: any free port)",
      (v) => parseInteger(v, "--port", 0, 65535),
      7860,
    )
    .option("--host <address>", "address to listen on (0.0.0.0: every interface)", "127.0.0.1");
  addRunFlags(serve).action(async (o) => {
    const checkpoint = servedCheckpoint(o.checkpoint);
    const webDir = webAppDir();
    const server = await startWebServer({ webDir, checkpoint, host: o.host, port: o.port });
    if (o.json) printJson({ url: server.url, checkpoint });
    else {
      console.log(`serving ${checkpoint} at ${server.url}`);
      console.log("the model runs in the browser; press Ctrl-C to stop");
    }
  });

  const exp = program
    .command("export-web")
    .description(
      "write the web app and a checkpoint's files to a folder that any static file server can host",
    );
  addWebCheckpointFlag(exp).requiredOption(
    "--out <dir>",
    `output folder: new, empty, or an earlier export (whose files are replaced, listed in ${EXPORT_MANIFEST})`,
  );
  addRunFlags(exp).action(async (o) => {
    const checkpoint = servedCheckpoint(o.checkpoint);
    const out = resolve(o.out);
    const files = await exportWeb({ webDir: webAppDir(), checkpoint, out });
    if (o.json) printJson({ out, checkpoint, files });
    else {
      console.log(`wrote ${files.length} files to ${out}`);
      console.log(
        `host the folder with any static file server (over HTTP: browsers do not run workers from file://), e.g. python3 -m http.server -d ${out}`,
      );
    }
  });
}
