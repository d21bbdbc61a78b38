/// <reference types="@webgpu/types" />
/**
 * The WebGPU runtime of the `webgpu` backend (first step: kernels only, see
 * docs/ARCHITECTURE.md): it acquires an adapter and a device, uploads and allocates storage
 * buffers, reads buffers back (the only asynchronous operation), caches compute pipelines by
 * shader and specialisation, and enqueues dispatches.
 *
 * Every kernel of ./kernels/ takes and returns GPUBuffers and only enqueues work: nothing is
 * read back until the caller awaits `read`. Queue order is submission order, so a kernel may
 * consume the output of the previous one without any synchronisation.
 *
 * Binding convention of every shader: binding 0 of group 0 is a uniform struct of 4-byte
 * scalars (the kernel's sizes and scalars, packed by `Params`), bindings 1.. are the storage
 * buffers in the order the kernel lists them. A buffer must not be bound twice in one dispatch
 * when one binding is writable (WebGPU's aliasing rule), so kernels whose contract allows
 * in-place use (rope) have an in-place variant.
 */

import type { Backend } from "../backend.js";

/** The element types kernels read and write: f32 data, i32 indices/targets, packed u8 masks. */
export type HostArray = Float32Array | Int32Array | Uint32Array | Uint8Array;

/** Invocations per workgroup of the one-dimensional kernels (the default device limit is 256). */
export const WG = 64;

/** The largest workgroup count along one dispatch dimension that every device supports. */
const MAX_GROUPS = 65535;

/**
 * Returns the WebGPU entry point of this platform, or throws an error naming the platform
 * when there is none.
 */
function gpuEntry(): GPU {
  const nav = (globalThis as { navigator?: { gpu?: GPU; userAgent?: string } }).navigator;
  if (nav?.gpu) return nav.gpu;
  const node = (globalThis as { process?: { versions?: { node?: string } } }).process?.versions
    ?.node;
  const platform = node
    ? `Node ${node} (no navigator.gpu: Node has no built-in WebGPU)`
    : `${nav?.userAgent ?? "this JavaScript runtime"} (navigator.gpu is missing: WebGPU needs a secure context and a browser that enables it; headless Chromium needs --enable-unsafe-webgpu)`;
  throw new Error(`WebGPU is not available on ${platform}`);
}

/** Packs a uniform struct of 4-byte scalars in declaration order (padded to 16 bytes). */
export class Params {
  private readonly words: number[] = [];
  private readonly kinds: ("u" | "i" | "f")[] = [];
  u32(x: number): this {
    this.words.push(x);
    this.kinds.push("u");
    return this;
  }
  i32(x: number): this {
    this.words.push(x);
    this.kinds.push("i");
    return this;
  }
  f32(x: number): this {
    this.words.push(x);
    this.kinds.push("f");
    return this;
  }
  /** Returns the packed bytes. */
  bytes(): ArrayBuffer {
    const n = Math.max(4, Math.ceil(this.words.length / 4) * 4);
    const buf = new ArrayBuffer(n * 4);
    const view = new DataView(buf);
    this.words.forEach((w, i) => {
      const kind = this.kinds[i];
      if (kind === "f") view.setFloat32(i * 4, w, true);
      else if (kind === "i") view.setInt32(i * 4, w, true);
      else view.setUint32(i * 4, w, true);
    });
    return buf;
  }
}

/** Returns a workgroup grid of at least `groups` groups within the per-dimension limit. */
export function grid(groups: number): [number, number, number] {
  const g = Math.max(1, Math.ceil(groups));
  if (g <= MAX_GROUPS) return [g, 1, 1];
  return [MAX_GROUPS, Math.ceil(g / MAX_GROUPS), 1];
}

/**
 * WGSL shared by the shaders: the workgroup size WG and the flat workgroup index of a
 * (possibly two-dimensional) grid made by `grid`.
 */
const WGSL_COMMON = /* wgsl */ `
const WG: u32 = ${WG}u;
fn groupIndex(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wid.y * nwg.x + wid.x;
}
`;

/**
 * Returns the start of a kernel's WGSL: the shared helpers (WGSL_COMMON), then its bindings
 * by the convention above: `struct P { <fields> }` as the uniform `p` at binding 0, then a
 * storage array at bindings 1, 2, … per entry of the comma-separated `buffers`, each
 * "<access> <name>[: <element type>]" with access `read` or `read_write` and element type f32
 * when omitted: prelude("n: u32, alpha: f32", "read x, read_write y").
 */
export function prelude(fields: string, buffers: string): string {
  const storage = buffers.split(/,\s*/).map((b, i) => {
    const m = /^(read|read_write) (\w+)(?:: (.+))?$/.exec(b);
    if (!m) throw new Error(`webgpu prelude: cannot read buffer "${b}"`);
    return `@group(0) @binding(${i + 1}) var<storage, ${m[1]}> ${m[2]}: array<${m[3] ?? "f32"}>;`;
  });
  const uniform = [`struct P { ${fields} }`, "@group(0) @binding(0) var<uniform> p: P;"];
  return [WGSL_COMMON, ...uniform, ...storage].join("\n");
}

/**
 * The entry point header of the kernels on a `grid` of WG-invocation workgroups: `wid` and
 * `nwg` locate the workgroup (groupIndex), `li` is the invocation's index within it.
 */
export const MAIN = /* wgsl */ `@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32)`;

/** Returns the entry point of a kernel with one invocation per element i < p.n running `body`. */
export function eachElement(body: string): string {
  return /* wgsl */ `${MAIN} {
  let i = groupIndex(wid, nwg) * WG + li;
  if (i >= p.n) { return; }
  ${body}
}`;
}

/** A contract argument as the webgpu kernels take it: arrays become GPUBuffers. */
type OnGpu<T> = T extends Float32Array | Int32Array | Uint8Array ? GPUBuffer : T;

/** The arguments of Backend method K with GPUBuffers for arrays. */
export type GpuArgs<K extends keyof Backend> = Backend[K] extends (...args: infer A) => unknown
  ? { [I in keyof A]: OnGpu<A[I]> }
  : never;

/**
 * The webgpu kernel of Backend method K: the runtime, then the contract's arguments with
 * GPUBuffers for arrays (so the parameter list is declared once, in backend.ts); it only
 * enqueues work.
 */
export type GpuKernel<K extends keyof Backend> = (rt: WebGpuRuntime, ...args: GpuArgs<K>) => void;

export class WebGpuRuntime {
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly modules = new Map<string, GPUShaderModule>();
  private placeholder: GPUBuffer | null = null;

  private constructor(
    readonly device: GPUDevice,
    /** The adapter's vendor and architecture (e.g. google / swiftshader). */
    readonly info: { vendor: string; architecture: string; description: string },
  ) {}

  /**
   * Returns a runtime on the default adapter; throws naming the platform when WebGPU or an
   * adapter is missing.
   */
  static async create(options: GPURequestAdapterOptions = {}): Promise<WebGpuRuntime> {
    const gpu = gpuEntry();
    const adapter = await gpu.requestAdapter(options);
    if (!adapter) {
      const ua = (globalThis as { navigator?: { userAgent?: string } }).navigator?.userAgent;
      throw new Error(
        `navigator.gpu exists but no WebGPU adapter is available on ${ua ?? "this platform"} (headless Chromium without a GPU needs --use-webgpu-adapter=swiftshader)`,
      );
    }
    const device = await adapter.requestDevice();
    const i = adapter.info;
    return new WebGpuRuntime(device, {
      vendor: i?.vendor ?? "",
      architecture: i?.architecture ?? "",
      description: i?.description ?? "",
    });
  }

  /** Returns a storage buffer holding a copy of `data` (size rounded up to 4 bytes). */
  upload(data: HostArray): GPUBuffer {
    const buffer = this.alloc(data.byteLength, 1);
    const padded = data.byteLength % 4 === 0 ? data : padTo4(data);
    this.device.queue.writeBuffer(buffer, 0, padded.buffer, padded.byteOffset, padded.byteLength);
    return buffer;
  }

  /**
   * Returns a zero-filled storage buffer of `count` elements of `bytesPerElement` bytes (at
   * least 4 bytes: WebGPU cannot bind empty buffers).
   */
  alloc(count: number, bytesPerElement = 4): GPUBuffer {
    const size = Math.max(4, Math.ceil((count * bytesPerElement) / 4) * 4);
    return this.device.createBuffer({
      size,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
  }

  /**
   * Returns a small buffer to bind where a kernel's optional operand is null (WebGPU needs
   * every declared binding bound; the kernel's flags keep it from being used). Never bind it
   * twice in one dispatch when one binding is writable.
   */
  none(): GPUBuffer {
    this.placeholder ??= this.alloc(4);
    return this.placeholder;
  }

  /** Overwrites the start of `buffer` with `data` (enqueued, in order with dispatches). */
  write(buffer: GPUBuffer, data: HostArray): void {
    const padded = data.byteLength % 4 === 0 ? data : padTo4(data);
    this.device.queue.writeBuffer(buffer, 0, padded.buffer, padded.byteOffset, padded.byteLength);
  }

  /**
   * Returns the first `length` float32 values of `buffer` (all of it when omitted) once every
   * previously enqueued kernel has finished. The only call that waits for the GPU.
   */
  async read(buffer: GPUBuffer, length?: number): Promise<Float32Array> {
    const bytes = await this.readBytes(buffer, length === undefined ? undefined : length * 4);
    return new Float32Array(bytes);
  }

  /** Returns `byteLength` bytes (a multiple of 4; default the whole buffer) of `buffer`. */
  async readBytes(buffer: GPUBuffer, byteLength = buffer.size): Promise<ArrayBuffer> {
    const size = Math.max(4, byteLength);
    const staging = this.device.createBuffer({
      size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const encoder = this.device.createCommandEncoder();
    encoder.copyBufferToBuffer(buffer, 0, staging, 0, size);
    this.device.queue.submit([encoder.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const copy = staging.getMappedRange().slice(0, byteLength);
    staging.unmap();
    staging.destroy();
    return copy;
  }

  /**
   * Returns the compute pipeline of entry point `main` of `code` specialised by the override
   * constants, compiled once per (shader, constants) pair.
   */
  private pipeline(code: string, constants: Record<string, number>): GPUComputePipeline {
    const key = `${code}\u0000${JSON.stringify(constants)}`;
    let p = this.pipelines.get(key);
    if (!p) {
      let module = this.modules.get(code);
      if (!module) {
        module = this.device.createShaderModule({ code });
        this.modules.set(code, module);
      }
      p = this.device.createComputePipeline({
        layout: "auto",
        compute: { module, entryPoint: "main", constants },
      });
      this.pipelines.set(key, p);
    }
    return p;
  }

  /**
   * Enqueues one dispatch over `groups` workgroups of the pipeline of `code` (specialised by
   * the override `constants`) with the uniform `params` at binding 0 and `buffers` at
   * bindings 1, 2, …
   */
  dispatch(
    code: string,
    params: Params,
    buffers: GPUBuffer[],
    groups: [number, number, number],
    constants: Record<string, number> = {},
  ): void {
    if (groups[0] === 0 || groups[1] === 0 || groups[2] === 0) return;
    const pipeline = this.pipeline(code, constants);
    const bytes = params.bytes();
    const uniform = this.device.createBuffer({
      size: bytes.byteLength,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    this.device.queue.writeBuffer(uniform, 0, bytes);
    const bindGroup = this.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: uniform } },
        ...buffers.map((buffer, i) => ({ binding: i + 1, resource: { buffer } })),
      ],
    });
    const encoder = this.device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(groups[0], groups[1], groups[2]);
    pass.end();
    this.device.queue.submit([encoder.finish()]);
    // Destroying after submit is allowed: the submitted dispatch still sees the buffer.
    uniform.destroy();
  }

  /** Enqueues a copy of `bytes` bytes from `src` to `dst` (offsets in bytes, multiples of 4). */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    if (bytes <= 0) return;
    const encoder = this.device.createCommandEncoder();
    encoder.copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
    this.device.queue.submit([encoder.finish()]);
  }

  /** Releases the device (pipelines and buffers made from it become unusable). */
  destroy(): void {
    this.device.destroy();
  }
}

/** Returns a copy of `data`'s bytes padded with zeros to a multiple of 4. */
function padTo4(data: HostArray): Uint8Array {
  const out = new Uint8Array(Math.ceil(data.byteLength / 4) * 4);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return out;
}
