/**
 * Messages between the page (main.ts) and the model's Web Worker (worker.ts). The page never
 * runs the model: it sends requests, and the worker answers each with progress, previews and a
 * result naming the request's id, or an error.
 */
import type { Image, SamplerKind } from "../src/browser.js";

/** Image settings of a request (guidance 0 = off, as on the command line). */
export interface ImageSettings {
  sampler: SamplerKind;
  steps: number;
  guidance: number;
  seed: number;
  /** Steps between previews of the image being denoised. */
  previewEvery: number;
}

export type Request =
  | { type: "load"; url: string; backend: BackendChoice }
  | { type: "draw"; id: number; caption: string; settings: ImageSettings }
  | { type: "caption"; id: number; image: Image; maxTokens: number }
  | {
      type: "continue";
      id: number;
      prompt: string;
      settings: ImageSettings;
      maxTokens: number;
      maxImages: number;
      temperature: number;
    };

/**
 * Where the worker runs the model: "auto" takes WebGPU when the browser offers an adapter and
 * the js backend otherwise; "js" and "webgpu" force one (the page's `?backend=` parameter).
 */
export type BackendChoice = "auto" | "js" | "webgpu";

/** What the worker tells the page about the loaded model. */
export interface ModelInfo {
  source: string;
  hasImages: boolean;
  imageSize: number | null;
  imageChannels: 1 | 3 | null;
  discrete: boolean;
  objective: "ddpm" | "flow";
  parameters: number;
  contextLength: number | null;
  loadMs: number;
  /** The backend the model runs on, and why (e.g. the adapter, or why WebGPU was not used). */
  backend: "js" | "webgpu";
  backendNote: string;
}

export type Reply =
  | { type: "progress"; file: string; loaded: number; total: number | null }
  | { type: "ready"; info: ModelInfo }
  | { type: "step"; id: number; step: number; steps: number }
  | { type: "preview"; id: number; step: number; steps: number; image: Image }
  | { type: "image"; id: number; image: Image; ms: number }
  | { type: "caption"; id: number; text: string; ms: number }
  | {
      type: "document";
      id: number;
      parts: Array<{ text: string } | { image: Image }>;
      ms: number;
    }
  | { type: "error"; id: number | null; message: string };
