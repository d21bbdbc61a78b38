/**
 * The model's thread: loads the checkpoint with `TransfusionPipeline.fromUrl` and runs each
 * request of the page, posting previews while an image is denoised, on WebGPU when the browser
 * offers an adapter (or the page asks for it) and on the js backend otherwise. Requests run
 * one after another, in the order they came; the page stays responsive because none of this
 * runs on the page's thread.
 */
import {
  createWebGpuBackend,
  type Image,
  setActiveBackend,
  TransfusionPipeline,
} from "../src/browser.js";
import type { BackendChoice, ImageSettings, ModelInfo, Reply, Request } from "./protocol.js";

/** The part of a dedicated worker's global scope used here (the DOM types describe a window). */
interface WorkerScope {
  postMessage(message: Reply, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent<Request>) => void) | null;
}
const scope = globalThis as unknown as WorkerScope;

let pipeline: TransfusionPipeline | null = null;

function post(message: Reply, images: Image[] = []): void {
  scope.postMessage(
    message,
    images.map((i) => i.data.buffer as ArrayBuffer),
  );
}

/** Returns the pipeline's image options for the page's settings. */
function imageOptions(s: ImageSettings) {
  return {
    sampler: s.sampler,
    steps: s.steps,
    guidanceScale: s.guidance > 0 ? s.guidance : null,
    seed: s.seed,
  };
}

/** Returns the loaded pipeline, or throws when the model has not loaded (yet). */
function loaded(): TransfusionPipeline {
  if (!pipeline) throw new Error("the model has not loaded");
  return pipeline;
}

/**
 * Makes the chosen backend active; returns it and a note for the page. "auto" falls back to js
 * when WebGPU or an adapter is missing; "webgpu" fails then.
 */
async function chooseBackend(
  choice: BackendChoice,
): Promise<Pick<ModelInfo, "backend" | "backendNote">> {
  if (choice === "js") return { backend: "js", backendNote: "js (chosen)" };
  try {
    const gpu = await createWebGpuBackend();
    setActiveBackend(gpu);
    const { vendor, architecture } = gpu.runtime.info;
    return {
      backend: "webgpu",
      backendNote: `WebGPU (${[vendor, architecture].filter(Boolean).join(" ") || "adapter"})`,
    };
  } catch (err) {
    if (choice === "webgpu") throw err;
    return { backend: "js", backendNote: `js (no WebGPU: ${(err as Error).message})` };
  }
}

async function load(url: string, choice: BackendChoice): Promise<void> {
  const t0 = performance.now();
  const chosen = await chooseBackend(choice);
  const p = await TransfusionPipeline.fromUrl(url, {
    onProgress: ({ file, loaded, total }) => post({ type: "progress", file, loaded, total }),
  });
  pipeline = p;
  const shape = p.imageShape;
  post({
    type: "ready",
    info: {
      source: p.source,
      hasImages: p.hasImages,
      imageSize: shape?.size ?? null,
      imageChannels: shape?.channels ?? null,
      discrete: p.config.imageCodes > 0,
      objective: p.config.objective,
      parameters: p.model.parameterCount(),
      contextLength: p.contextLength,
      loadMs: performance.now() - t0,
      ...chosen,
    },
  });
}

async function run(r: Exclude<Request, { type: "load" }>): Promise<void> {
  const p = loaded();
  const t0 = performance.now();
  const onImageStep = (_row: number, step: number, steps: number) =>
    post({ type: "step", id: r.id, step, steps });
  if (r.type === "draw") {
    const { images } = await p.textToImage([r.caption], {
      ...imageOptions(r.settings),
      onImageStep,
      previewEvery: r.settings.previewEvery,
      onPreview: (_row, step, steps, image) =>
        post({ type: "preview", id: r.id, step, steps, image }, [image]),
    });
    post({ type: "image", id: r.id, image: images[0]!, ms: performance.now() - t0 }, images);
  } else if (r.type === "caption") {
    const [text] = await p.caption([r.image], r.maxTokens);
    post({ type: "caption", id: r.id, text: text!, ms: performance.now() - t0 });
  } else {
    const parts = await p.generate(
      { parts: [{ text: r.prompt }] },
      {
        ...imageOptions(r.settings),
        onImageStep,
        sampling: { temperature: r.temperature, topK: 0, topP: 0.95 },
        maxNewTokens: r.maxTokens,
        maxImages: r.maxImages,
      },
    );
    const out = parts.map((q) => (q.image ? { image: q.image } : { text: q.text ?? "" }));
    const images = parts.flatMap((q) => (q.image ? [q.image] : []));
    post({ type: "document", id: r.id, parts: out, ms: performance.now() - t0 }, images);
  }
}

/** The request being served; the next one starts when it settles. */
let queue: Promise<void> = Promise.resolve();

scope.onmessage = (e) => {
  const r = e.data;
  const message = (err: unknown) => (err as Error).message ?? String(err);
  queue = queue.then(() =>
    r.type === "load"
      ? load(r.url, r.backend).catch((err: unknown) =>
          post({ type: "error", id: null, message: message(err) }),
        )
      : run(r).catch((err: unknown) => post({ type: "error", id: r.id, message: message(err) })),
  );
};
