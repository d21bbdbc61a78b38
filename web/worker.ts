/**
 * The model's thread: loads the checkpoint with `TransfusionPipeline.fromUrl` and runs each
 * request of the page on the js backend, posting previews while an image is denoised. Work
 * here is synchronous, so requests run one after another; the page stays responsive because
 * none of it runs on the page's thread.
 */
import { type Image, TransfusionPipeline } from "../src/browser.js";
import type { ImageSettings, Reply, Request } from "./protocol.js";

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

async function load(url: string): Promise<void> {
  const t0 = performance.now();
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
    },
  });
}

function run(r: Exclude<Request, { type: "load" }>): void {
  const p = loaded();
  const t0 = performance.now();
  const onImageStep = (_row: number, step: number, steps: number) =>
    post({ type: "step", id: r.id, step, steps });
  if (r.type === "draw") {
    const { images } = p.textToImage([r.caption], {
      ...imageOptions(r.settings),
      onImageStep,
      previewEvery: r.settings.previewEvery,
      onPreview: (_row, step, steps, image) =>
        post({ type: "preview", id: r.id, step, steps, image }, [image]),
    });
    post({ type: "image", id: r.id, image: images[0]!, ms: performance.now() - t0 }, images);
  } else if (r.type === "caption") {
    const [text] = p.caption([r.image], r.maxTokens);
    post({ type: "caption", id: r.id, text: text!, ms: performance.now() - t0 });
  } else {
    const parts = p.generate(
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

scope.onmessage = (e) => {
  const r = e.data;
  if (r.type === "load") {
    load(r.url).catch((err: unknown) =>
      post({ type: "error", id: null, message: (err as Error).message ?? String(err) }),
    );
    return;
  }
  try {
    run(r);
  } catch (err) {
    post({ type: "error", id: r.id, message: (err as Error).message ?? String(err) });
  }
};
