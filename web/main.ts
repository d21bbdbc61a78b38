/**
 * The page: controls, previews and results. The model runs in a Web Worker (worker.ts); this
 * thread only reads the checkpoint's config, tokenizer and model card (to describe the model
 * and check prompts as they are typed), decodes dropped images and paints what comes back.
 *
 * The checkpoint is read from `model/` beside the page, or from the URL in `?model=`.
 */
import {
  convertChannels,
  type Image,
  normalisePrompt,
  type PromptStyle,
  promptStyle,
  type SamplerKind,
  Tokenizer,
  unseenWords,
} from "../src/browser.js";
import type { BackendChoice, ImageSettings, ModelInfo, Reply, Request } from "./protocol.js";

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`index.html has no #${id}`);
  return el as T;
};

const ui = {
  status: $("status"),
  loadProgress: $<HTMLProgressElement>("load-progress"),
  prompt: $<HTMLInputElement>("prompt"),
  promptNote: $("prompt-note"),
  steps: $<HTMLInputElement>("steps"),
  guidance: $<HTMLInputElement>("guidance"),
  sampler: $<HTMLSelectElement>("sampler"),
  seed: $<HTMLInputElement>("seed"),
  drawForm: $<HTMLFormElement>("draw-form"),
  draw: $<HTMLButtonElement>("draw"),
  sameSeed: $<HTMLButtonElement>("same-seed"),
  image: $<HTMLCanvasElement>("image"),
  imageNote: $("image-note"),
  upload: $<HTMLInputElement>("upload"),
  drop: $("drop"),
  uploaded: $<HTMLCanvasElement>("uploaded"),
  caption: $("caption"),
  continueForm: $<HTMLFormElement>("continue-form"),
  continuePrompt: $<HTMLTextAreaElement>("continue-prompt"),
  continueNote: $("continue-note"),
  maxTokens: $<HTMLInputElement>("max-tokens"),
  maxImages: $<HTMLInputElement>("max-images"),
  temperature: $<HTMLInputElement>("temperature"),
  continueButton: $<HTMLButtonElement>("continue"),
  document: $("document"),
  modelInfo: $("model-info"),
  modelCard: $("model-card"),
  log: $("log"),
};

const modelUrl = new URL(
  new URLSearchParams(location.search).get("model") ?? "model/",
  location.href,
).href.replace(/\/?$/, "/");

let info: ModelInfo | null = null;
let tokenizer: Tokenizer | null = null;
let captionStyle: PromptStyle = { lowercase: false };
let documentStyle: PromptStyle = { lowercase: false };
let busy = false;
let nextId = 1;
/** The seed of the last image drawn, for "same seed again". */
let lastSeed: number | null = null;

/** What to do with the worker's replies to the request in flight. */
let pending: { id: number; what: string; onReply: (r: Reply) => void } | null = null;

const worker = new Worker(new URL("worker.js", import.meta.url), { type: "module" });
worker.onmessage = (e: MessageEvent<Reply>) => onReply(e.data);
worker.onerror = (e) => fail(`the model's worker failed: ${e.message}`);

function send(r: Request, transfer: Transferable[] = []): void {
  worker.postMessage(r, transfer);
}

function setStatus(text: string, state: "loading" | "busy" | "ready" | "error"): void {
  ui.status.textContent = text;
  ui.status.dataset.state = state;
}

function fail(message: string): void {
  setStatus(message, "error");
  pending = null;
  setBusy(false);
}

function setBusy(on: boolean): void {
  busy = on;
  const ready = info !== null && !on;
  const images = ready && info!.hasImages;
  ui.draw.disabled = !images;
  ui.sameSeed.disabled = !images || lastSeed === null;
  ui.upload.disabled = !images;
  ui.continueButton.disabled = !ready;
  document.body.dataset.busy = String(on);
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

function logRequest(text: string, ms: number): void {
  const li = document.createElement("li");
  li.textContent = `${text} — ${seconds(ms)}`;
  ui.log.prepend(li);
}

/** Paints an image into a canvas at its own size (CSS scales it up without smoothing). */
function paint(canvas: HTMLCanvasElement, img: Image): void {
  canvas.width = img.width;
  canvas.height = img.height;
  const rgba = new ImageData(img.width, img.height);
  const n = img.width * img.height;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      rgba.data[4 * i + c] = img.data[img.channels === 3 ? 3 * i + c : i]!;
    }
    rgba.data[4 * i + 3] = 255;
  }
  canvas.getContext("2d")!.putImageData(rgba, 0, 0);
}

function onReply(r: Reply): void {
  if (r.type === "progress") {
    ui.loadProgress.hidden = false;
    if (r.total) ui.loadProgress.value = r.loaded / r.total;
    const mb = (r.loaded / 1e6).toFixed(1);
    setStatus(
      `Loading the model: ${mb} MB${r.total ? ` of ${(r.total / 1e6).toFixed(1)} MB` : ""}…`,
      "loading",
    );
    return;
  }
  if (r.type === "ready") {
    info = r.info;
    ui.loadProgress.hidden = true;
    configureForModel(r.info);
    setStatus(`Model loaded in ${seconds(r.info.loadMs)}. Ready.`, "ready");
    setBusy(false);
    return;
  }
  if (r.type === "error" && (r.id === null || pending === null)) {
    fail(r.id === null ? `Cannot load the model: ${r.message}` : r.message);
    return;
  }
  if (!pending || !("id" in r) || r.id !== pending.id) return;
  pending.onReply(r);
}

/** Sends a request and routes its replies; the buttons stay off until it ends. */
function request(
  r: Request & { id: number },
  what: string,
  onReply: (r: Reply) => void,
  transfer: Transferable[] = [],
): void {
  pending = {
    id: r.id,
    what,
    onReply: (reply) => {
      if (reply.type === "error") {
        fail(`${what} failed: ${reply.message}`);
        return;
      }
      onReply(reply);
    },
  };
  setBusy(true);
  setStatus(`${what}…`, "busy");
  send(r, transfer);
}

function finish(text: string, ms: number): void {
  pending = null;
  setStatus(`${text} in ${seconds(ms)}.`, "ready");
  logRequest(text, ms);
  setBusy(false);
}

function readInt(input: HTMLInputElement, name: string, min: number, max: number): number {
  const v = Number(input.value);
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new Error(`${name} must be a whole number from ${min} to ${max}, got "${input.value}"`);
  }
  return v;
}

function readNumber(input: HTMLInputElement, name: string, min: number): number {
  const v = Number(input.value);
  if (input.value.trim() === "" || !Number.isFinite(v) || v < min) {
    throw new Error(`${name} must be a number ≥ ${min}, got "${input.value}"`);
  }
  return v;
}

function imageSettings(seed: number): ImageSettings {
  const steps = readInt(ui.steps, "Steps", 1, 1000);
  return {
    sampler: ui.sampler.value as SamplerKind,
    steps,
    guidance: readNumber(ui.guidance, "Guidance", 0),
    seed,
    // About twenty previews per image, whatever the step count.
    previewEvery: Math.max(1, Math.ceil(steps / 20)),
  };
}

/** Shows how a prompt will be sent and which of its words the tokenizer does not know. */
function describePrompt(text: string, style: PromptStyle, note: HTMLElement): void {
  note.replaceChildren();
  if (!tokenizer || text.trim() === "") return;
  const sent = normalisePrompt(text, style);
  if (sent !== text) {
    const s = document.createElement("span");
    s.textContent = `Sent as “${sent}” (the model was trained on text written that way). `;
    note.append(s);
  }
  const unseen = unseenWords(tokenizer, sent);
  if (unseen.length > 0) {
    const s = document.createElement("span");
    s.className = "unseen";
    s.dataset.testid = "unseen";
    s.dataset.words = unseen.join(" ");
    s.textContent = `Not in the tokenizer's vocabulary as whole words: ${unseen.map((w) => `“${w}”`).join(", ")} — the model probably never saw ${unseen.length === 1 ? "it" : "them"} in training.`;
    note.append(s);
  }
}

function draw(seed: number): void {
  const caption = normalisePrompt(ui.prompt.value, captionStyle);
  const settings = imageSettings(seed);
  const id = nextId++;
  ui.image.dataset.final = "false";
  ui.imageNote.textContent = "";
  request({ type: "draw", id, caption, settings }, `Drawing “${caption}”`, (r) => {
    if (r.type === "step") {
      setStatus(`Drawing “${caption}”: step ${r.step} of ${r.steps}…`, "busy");
    } else if (r.type === "preview") {
      paint(ui.image, r.image);
      ui.image.dataset.step = String(r.step);
      ui.imageNote.textContent = `What the model expects the image to become, after step ${r.step} of ${r.steps}`;
    } else if (r.type === "image") {
      paint(ui.image, r.image);
      lastSeed = seed;
      ui.image.dataset.final = "true";
      ui.image.dataset.seed = String(seed);
      ui.image.dataset.caption = caption;
      ui.imageNote.textContent = `“${caption || "(no caption)"}”, seed ${seed}, ${settings.sampler}, ${settings.steps} steps, guidance ${settings.guidance}`;
      finish(`Drew “${caption}” (seed ${seed})`, r.ms);
    }
  });
}

ui.drawForm.addEventListener("submit", (e) => {
  e.preventDefault();
  if (busy) return;
  try {
    const seed = readInt(ui.seed, "Seed", 0, 2 ** 31 - 1);
    draw(seed);
    // The next press of Draw gets a new image; "same seed again" repeats this one.
    ui.seed.value = String(seed + 1);
  } catch (err) {
    fail((err as Error).message);
  }
});

ui.sameSeed.addEventListener("click", () => {
  if (busy || lastSeed === null) return;
  try {
    draw(lastSeed);
  } catch (err) {
    fail((err as Error).message);
  }
});

ui.prompt.addEventListener("input", () =>
  describePrompt(ui.prompt.value, captionStyle, ui.promptNote),
);
ui.continuePrompt.addEventListener("input", () =>
  describePrompt(ui.continuePrompt.value, documentStyle, ui.continueNote),
);

/**
 * Returns the image in an image file as the model reads it: alpha composited on white, the
 * short side scaled to the model's size and the long side cropped centred (as `transfusion
 * caption` does; an image already of that size is used pixel for pixel), then converted to the
 * model's channels (colour to grey by luminance).
 */
async function fileToImage(file: Blob, size: number, channels: 1 | 3): Promise<Image> {
  const bitmap = await createImageBitmap(file, {
    premultiplyAlpha: "none",
    colorSpaceConversion: "none",
  });
  const canvas = document.createElement("canvas");
  canvas.width = size;
  canvas.height = size;
  const ctx = canvas.getContext("2d", { willReadFrequently: true })!;
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, size, size);
  ctx.imageSmoothingQuality = "high";
  const side = Math.min(bitmap.width, bitmap.height);
  const sx = Math.floor((bitmap.width - side) / 2);
  const sy = Math.floor((bitmap.height - side) / 2);
  ctx.drawImage(bitmap, sx, sy, side, side, 0, 0, size, size);
  bitmap.close();
  const rgba = ctx.getImageData(0, 0, size, size).data;
  const rgb = new Uint8Array(size * size * 3);
  for (let i = 0; i < size * size; i++) {
    rgb[3 * i] = rgba[4 * i]!;
    rgb[3 * i + 1] = rgba[4 * i + 1]!;
    rgb[3 * i + 2] = rgba[4 * i + 2]!;
  }
  return convertChannels({ width: size, height: size, channels: 3, data: rgb }, channels);
}

async function captionFile(file: File): Promise<void> {
  if (busy || !info?.imageSize || !info.imageChannels) return;
  let image: Image;
  try {
    image = await fileToImage(file, info.imageSize, info.imageChannels);
  } catch (err) {
    fail(
      `Cannot read ${file.name}: ${(err as Error).message || "not an image the browser can decode"}`,
    );
    return;
  }
  paint(ui.uploaded, image);
  ui.caption.textContent = "";
  const id = nextId++;
  request({ type: "caption", id, image, maxTokens: 32 }, `Captioning ${file.name}`, (r) => {
    if (r.type !== "caption") return;
    ui.caption.textContent = r.text;
    finish(`Captioned ${file.name}`, r.ms);
  });
}

ui.upload.addEventListener("change", () => {
  const file = ui.upload.files?.[0];
  if (file) void captionFile(file);
});
ui.drop.addEventListener("dragover", (e) => {
  e.preventDefault();
  ui.drop.classList.add("over");
});
ui.drop.addEventListener("dragleave", () => ui.drop.classList.remove("over"));
ui.drop.addEventListener("drop", (e) => {
  e.preventDefault();
  ui.drop.classList.remove("over");
  const file = e.dataTransfer?.files[0];
  if (file) void captionFile(file);
});

ui.continueForm.addEventListener("submit", (e) => {
  e.preventDefault();
  if (busy) return;
  try {
    const prompt = normalisePrompt(ui.continuePrompt.value, documentStyle);
    if (prompt === "") throw new Error("Write the start of a document to continue");
    const seed = readInt(ui.seed, "Seed", 0, 2 ** 31 - 1);
    const r: Request & { id: number } = {
      type: "continue",
      id: nextId++,
      prompt,
      settings: imageSettings(seed),
      maxTokens: readInt(ui.maxTokens, "Max tokens", 1, 1024),
      maxImages: info?.hasImages ? readInt(ui.maxImages, "Max images", 0, 8) : 0,
      temperature: readNumber(ui.temperature, "Temperature", 0),
    };
    ui.document.replaceChildren();
    ui.document.dataset.done = "false";
    request(r, "Continuing the prompt", (reply) => {
      if (reply.type === "step") {
        setStatus(
          `Continuing the prompt: drawing an image, step ${reply.step} of ${reply.steps}…`,
          "busy",
        );
      }
      if (reply.type !== "document") return;
      const lead = document.createElement("span");
      lead.className = "given";
      lead.textContent = prompt;
      ui.document.append(lead);
      for (const part of reply.parts) {
        if ("image" in part) {
          const c = document.createElement("canvas");
          c.className = "inline";
          paint(c, part.image);
          ui.document.append(c);
        } else {
          const s = document.createElement("span");
          s.textContent = part.text;
          ui.document.append(s);
        }
      }
      ui.document.dataset.done = "true";
      finish(`Continued “${prompt}” (seed ${seed})`, reply.ms);
    });
  } catch (err) {
    fail((err as Error).message);
  }
});

/** Adjusts the controls to what the model can do. */
function configureForModel(m: ModelInfo): void {
  for (const o of Array.from(ui.sampler.options)) {
    const flow = o.value === "flow-euler";
    o.disabled = m.discrete || (m.objective === "flow") !== flow;
  }
  ui.sampler.value = m.objective === "flow" ? "flow-euler" : "ddpm";
  ui.sampler.disabled = m.discrete;
  ui.steps.disabled = m.discrete;
  if (!m.hasImages) {
    ui.imageNote.textContent =
      "This model was trained on text only: it cannot draw or read images.";
    ui.maxImages.value = "0";
    ui.maxImages.disabled = true;
  }
  addInfo("Parameters", m.parameters.toLocaleString("en"));
  if (m.imageSize)
    addInfo(
      "Images",
      `${m.imageSize}×${m.imageSize}, ${m.imageChannels === 1 ? "grey" : "colour"}`,
    );
  addInfo("Loaded in", seconds(m.loadMs));
  addInfo("Runs on", m.backendNote);
}

/** The page's `?backend=auto|js|webgpu` parameter (default auto). */
function backendChoice(): BackendChoice {
  const v = new URLSearchParams(location.search).get("backend") ?? "auto";
  return v === "js" || v === "webgpu" ? v : "auto";
}

function addInfo(term: string, value: string): void {
  const dt = document.createElement("dt");
  dt.textContent = term;
  const dd = document.createElement("dd");
  dd.textContent = value;
  ui.modelInfo.append(dt, dd);
}

/** Returns the body of `name` beside the checkpoint, or null when it is not there. */
async function fetchBeside(name: string): Promise<Response | null> {
  try {
    const res = await fetch(new URL(name, modelUrl));
    return res.ok ? res : null;
  } catch {
    return null;
  }
}

/** Describes the checkpoint from its config.json and reads its tokenizer and model card. */
async function describeModel(): Promise<void> {
  addInfo("Checkpoint", modelUrl);
  const cfgRes = await fetchBeside("config.json");
  if (!cfgRes) return;
  const cfg = (await cfgRes.json()) as Record<string, unknown> & {
    step?: number;
    data?: string;
    model?: Record<string, unknown>;
    run?: { textCorpus?: string | null };
  };
  captionStyle = promptStyle(cfg, "caption");
  documentStyle = promptStyle(cfg, "document");
  if (cfg.step !== undefined) addInfo("Training step", String(cfg.step));
  if (cfg.data)
    addInfo("Trained on", `${cfg.data}${cfg.run?.textCorpus ? ` + ${cfg.run.textCorpus}` : ""}`);
  const m = cfg.model ?? {};
  addInfo(
    "Transformer",
    `${m.layers} layers, width ${m.dim}, ${m.heads} heads, ${Number(m.imageCodes) > 0 ? `${m.imageCodes} image codes` : `${m.objective} objective, ${m.encoder} codec, patch ${m.patchSize}`}`,
  );
  const tokRes = await fetchBeside("tokenizer.json");
  if (tokRes) {
    tokenizer = Tokenizer.fromText(await tokRes.text(), new URL("tokenizer.json", modelUrl).href);
    addInfo("Vocabulary", `${tokenizer.vocabSize} tokens`);
    describePrompt(ui.prompt.value, captionStyle, ui.promptNote);
  }
  // `transfusion serve` and `export-web` list the files under model/ in files.json, so a model
  // card is only asked for when it is there; elsewhere both names are tried.
  const index = await fetchBeside("files.json");
  const listed = index ? ((await index.json()) as { files?: string[] }).files : undefined;
  const maybe = (name: string) =>
    listed && !listed.includes(name) ? Promise.resolve(null) : fetchBeside(name);
  const card = await maybe("MODEL_CARD.md");
  const cardJson = await maybe("model-card.json");
  if (card) {
    const pre = document.createElement("pre");
    pre.textContent = await card.text();
    ui.modelCard.append(pre);
  }
  if (cardJson) {
    const dl = document.createElement("dl");
    const fields = (await cardJson.json()) as Record<string, unknown>;
    for (const [k, v] of Object.entries(fields)) {
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.textContent = typeof v === "string" ? v : JSON.stringify(v);
      dl.append(dt, dd);
    }
    ui.modelCard.append(dl);
  }
  ui.modelCard.hidden = !(card || cardJson);
}

setBusy(false);
setStatus("Loading the model…", "loading");
send({ type: "load", url: modelUrl, backend: backendChoice() });
describeModel().catch((err: unknown) => {
  addInfo("Note", `cannot describe the model: ${(err as Error).message}`);
});
