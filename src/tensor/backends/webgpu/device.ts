/// <reference types="@webgpu/types" />
/**
 * The WebGPU runtime of the `webgpu` backend: it acquires an adapter and a device, uploads and
 * allocates storage buffers, reads buffers back (the only asynchronous operation), caches
 * compute pipelines by shader and specialisation, and records dispatches.
 *
 * Every kernel of ./kernels/ takes GPUBuffers and only enqueues work: nothing is read back
 * until the caller awaits `read`. Work runs in the order it was enqueued, so a kernel may
 * consume the output of the previous one without any synchronisation.
 *
 * Batching: a training step issues thousands of small dispatches, and every queue submit has
 * a fixed cost (large on a software adapter such as SwiftShader), so dispatches and copies are
 * recorded into one pending command encoder, consecutive dispatches sharing a compute pass
 * (WebGPU orders and synchronises the dispatches of a pass), and submitted together at a
 * flush: when BATCH dispatches are pending, before a read, before `write` (queue.writeBuffer
 * runs at the next queue operation, i.e. before work still in an unsubmitted encoder, so it
 * must not overtake pending work that uses the buffer), on `flush()`, and at the latest in a
 * microtask after the first recording, so work never waits for a read that does not come.
 * Writing a freshly created buffer (`upload`) needs no flush: no pending work can use it.
 * The uniforms of a batch are packed into one reused uniform buffer (one slot per dispatch),
 * written just before the batch is submitted; temporaries a kernel is done with are handed to
 * `release`, which destroys them after the submit (destroying a buffer that unsubmitted
 * commands use would invalidate the submit).
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
  /** The packed size in bytes: the words padded to a multiple of 16 bytes (at least 16). */
  get byteLength(): number {
    return Math.max(4, Math.ceil(this.words.length / 4) * 4) * 4;
  }
  /** Writes the packed words at byte `offset` of `view` (the padding is left as it is). */
  writeTo(view: DataView, offset: number): void {
    this.words.forEach((w, i) => {
      const kind = this.kinds[i];
      const at = offset + i * 4;
      if (kind === "f") view.setFloat32(at, w, true);
      else if (kind === "i") view.setInt32(at, w, true);
      else view.setUint32(at, w, true);
    });
  }
  /** Returns the packed bytes. */
  bytes(): ArrayBuffer {
    const buf = new ArrayBuffer(this.byteLength);
    this.writeTo(new DataView(buf), 0);
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

/**
 * Commands (dispatches and copies) recorded before the pending batch is submitted: enough to
 * amortise a submit's fixed cost, few enough that the GPU starts early in a long step.
 */
export const BATCH = 64;

/**
 * Bytes between two uniform slots of a batch: at least the largest Params the kernels pack
 * (64 bytes), and a multiple of every device's minUniformBufferOffsetAlignment (at most 256).
 */
const SLOT = 256;

/** A compiled pipeline and its bind group layout (fetched once: each call makes a new object). */
interface Compiled {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
}

export class WebGpuRuntime {
  /** Shader modules by WGSL code, each with its pipelines by specialisation constants. */
  private readonly shaders = new Map<
    string,
    { module: GPUShaderModule; pipelines: Map<string, Compiled> }
  >();
  private placeholder: GPUBuffer | null = null;
  /** The encoder recording the pending batch (null: nothing pending), and its open pass. */
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  /** Commands recorded in the pending batch, and how many of them took a uniform slot. */
  private commands = 0;
  private slots = 0;
  /** Buffers to destroy once the pending batch is submitted (see `release`). */
  private released: GPUBuffer[] = [];
  /** The batch's uniform buffer, BATCH slots of SLOT bytes, and its host image. */
  private readonly uniforms: GPUBuffer;
  private readonly uniformImage = new ArrayBuffer(BATCH * SLOT);
  private readonly uniformView = new DataView(this.uniformImage);

  private constructor(
    readonly device: GPUDevice,
    /** The adapter's vendor and architecture (e.g. google / swiftshader). */
    readonly info: { vendor: string; architecture: string; description: string },
    /**
     * The WebGPU entry the device came from, held so that it lives as long as the runtime
     * (Dawn in Node tears its instance down, pending work included, once it is collected).
     */
    readonly gpu: GPU,
  ) {
    this.uniforms = device.createBuffer({
      size: BATCH * SLOT,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
  }

  /**
   * Returns a runtime on the adapter `options` choose from `gpu` (default: navigator.gpu);
   * throws naming the platform when WebGPU or an adapter is missing.
   */
  static async create(
    options: GPURequestAdapterOptions = {},
    gpu: GPU = gpuEntry(),
  ): Promise<WebGpuRuntime> {
    const adapter = await gpu.requestAdapter(options);
    if (!adapter) {
      const ua = (globalThis as { navigator?: { userAgent?: string } }).navigator?.userAgent;
      throw new Error(
        ua
          ? `navigator.gpu exists but no WebGPU adapter is available on ${ua} (headless Chromium without a GPU needs --use-webgpu-adapter=swiftshader)`
          : "WebGPU offered no adapter",
      );
    }
    // The kernels need 256 invocations per workgroup (16×16 gemm tiles) and up to 10 storage
    // buffers per dispatch; a compatibility-mode device (e.g. Dawn on OpenGL) defaults to less,
    // so ask for what the adapter allows of those, and for its largest buffers.
    const l = adapter.limits;
    const device = await adapter.requestDevice({
      requiredLimits: {
        maxComputeInvocationsPerWorkgroup: Math.min(256, l.maxComputeInvocationsPerWorkgroup),
        maxComputeWorkgroupSizeX: Math.min(256, l.maxComputeWorkgroupSizeX),
        maxComputeWorkgroupSizeY: Math.min(256, l.maxComputeWorkgroupSizeY),
        maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
        maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
        maxBufferSize: l.maxBufferSize,
      },
    });
    const i = adapter.info;
    return new WebGpuRuntime(
      device,
      {
        vendor: i?.vendor ?? "",
        architecture: i?.architecture ?? "",
        description: i?.description ?? "",
      },
      gpu,
    );
  }

  /**
   * Returns a storage buffer holding a copy of `data` (size rounded up to 4 bytes). The buffer
   * is new, so its write may run before pending work: no flush.
   */
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

  /**
   * Overwrites the start of `buffer` with `data`, after every kernel enqueued before (the
   * pending batch is submitted first, since the write would otherwise overtake it).
   */
  write(buffer: GPUBuffer, data: HostArray): void {
    this.flush();
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
    this.copy(buffer, 0, staging, 0, size);
    this.flush();
    await staging.mapAsync(GPUMapMode.READ);
    const copy = staging.getMappedRange().slice(0, byteLength);
    staging.unmap();
    staging.destroy();
    return copy;
  }

  /**
   * Returns the compute pipeline of entry point `main` of `code` specialised by the override
   * constants, compiled once per (shader, constants) pair, with its bind group layout.
   */
  private compiled(code: string, constants: Record<string, number>): Compiled {
    let shader = this.shaders.get(code);
    if (!shader) {
      shader = { module: this.device.createShaderModule({ code }), pipelines: new Map() };
      this.shaders.set(code, shader);
    }
    const key = JSON.stringify(constants);
    let c = shader.pipelines.get(key);
    if (!c) {
      const pipeline = this.device.createComputePipeline({
        layout: "auto",
        compute: { module: shader.module, entryPoint: "main", constants },
      });
      c = { pipeline, layout: pipeline.getBindGroupLayout(0) };
      shader.pipelines.set(key, c);
    }
    return c;
  }

  /**
   * Returns the encoder of the pending batch, starting one (and scheduling its submission at
   * the end of the current task at the latest) when nothing is pending.
   */
  private recorder(): GPUCommandEncoder {
    if (!this.encoder) {
      this.encoder = this.device.createCommandEncoder();
      queueMicrotask(() => this.flush());
    }
    return this.encoder;
  }

  /** Ends the open compute pass, so that a copy can be recorded. */
  private endPass(): void {
    this.pass?.end();
    this.pass = null;
  }

  /** Counts one recorded command; submits the batch when it is full. */
  private recorded(): void {
    if (++this.commands >= BATCH) this.flush();
  }

  /**
   * Returns the binding of `params` for the dispatch being recorded: its slot of the batch's
   * uniform buffer, or (larger than a slot) a buffer of its own, released after the batch.
   */
  private uniform(params: Params): GPUBufferBinding {
    const size = params.byteLength;
    if (size > SLOT) {
      const buffer = this.device.createBuffer({
        size,
        usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      });
      this.device.queue.writeBuffer(buffer, 0, params.bytes());
      this.release(buffer);
      return { buffer };
    }
    const offset = this.slots++ * SLOT;
    params.writeTo(this.uniformView, offset);
    return { buffer: this.uniforms, offset, size };
  }

  /**
   * Enqueues one dispatch over `groups` workgroups of the pipeline of `code` (specialised by
   * the override `constants`) with the uniform `params` at binding 0 and `buffers` at
   * bindings 1, 2, … It is recorded into the pending batch, submitted at the next flush.
   */
  dispatch(
    code: string,
    params: Params,
    buffers: GPUBuffer[],
    groups: [number, number, number],
    constants: Record<string, number> = {},
  ): void {
    if (groups[0] === 0 || groups[1] === 0 || groups[2] === 0) return;
    const { pipeline, layout } = this.compiled(code, constants);
    const encoder = this.recorder();
    const bindGroup = this.device.createBindGroup({
      layout,
      entries: [
        { binding: 0, resource: this.uniform(params) },
        ...buffers.map((buffer, i) => ({ binding: i + 1, resource: { buffer } })),
      ],
    });
    this.pass ??= encoder.beginComputePass();
    this.pass.setPipeline(pipeline);
    this.pass.setBindGroup(0, bindGroup);
    this.pass.dispatchWorkgroups(groups[0], groups[1], groups[2]);
    this.recorded();
  }

  /**
   * Enqueues a copy of `bytes` bytes from `src` to `dst` (offsets in bytes, multiples of 4),
   * recorded into the pending batch between its dispatches.
   */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    if (bytes <= 0) return;
    const encoder = this.recorder();
    this.endPass();
    encoder.copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
    this.recorded();
  }

  /**
   * Destroys `buffer` once the work enqueued so far no longer needs it: at once when nothing
   * is pending (work already submitted keeps a destroyed buffer alive until it completes),
   * else after the pending batch is submitted. For a kernel's temporaries.
   */
  release(buffer: GPUBuffer): void {
    if (this.encoder) this.released.push(buffer);
    else buffer.destroy();
  }

  /**
   * Submits the pending batch (its uniforms written first) and destroys the buffers released
   * meanwhile. Enqueued work runs without it; it only decides when the GPU may start.
   */
  flush(): void {
    const encoder = this.encoder;
    if (encoder) {
      this.endPass();
      this.encoder = null;
      if (this.slots > 0) {
        this.device.queue.writeBuffer(this.uniforms, 0, this.uniformImage, 0, this.slots * SLOT);
      }
      this.device.queue.submit([encoder.finish()]);
      this.commands = 0;
      this.slots = 0;
    }
    const released = this.released;
    this.released = [];
    for (const b of released) b.destroy();
  }

  /** Releases the device (pipelines and buffers made from it become unusable). */
  destroy(): void {
    this.pass = null;
    this.encoder = null;
    this.released = [];
    this.device.destroy();
  }
}

/** Returns a copy of `data`'s bytes padded with zeros to a multiple of 4. */
function padTo4(data: HostArray): Uint8Array {
  const out = new Uint8Array(Math.ceil(data.byteLength / 4) * 4);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return out;
}
