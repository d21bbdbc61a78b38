/**
 * Tensor: a shaped float32 (or int32) array that can take part in reverse-mode autodiff.
 * Float values live where the active backend keeps them (storage.ts): a host Float32Array, or
 * a device array that host code reaches with `await tensor.read()`. A host tensor used by a
 * device backend's op moves to the device once (`store`).
 *
 * Every op records, when gradients are enabled and an input requires one, a node holding a
 * closure that maps the output gradient to input gradients. `backward()` runs those closures
 * in reverse topological order and then drops the graph, so memory is returned as soon as a
 * step ends.
 */
import { backend } from "./backends/current.js";
import { alloc } from "./pool.js";
import type { Rng } from "./rng.js";
import { type DeviceArray, type FloatStore, isHost } from "./storage.js";

export type DType = "f32" | "i32";
export type Shape = readonly number[];

/** A recorded op: its inputs and the rule that sends the output's gradient to them. */
export interface Node {
  readonly inputs: readonly Tensor[];
  /** Receives the output gradient (read-only) and accumulates into input gradients. */
  readonly backward: (gOut: FloatStore) => void;
  readonly op: string;
}

let gradEnabled = true;

/** Returns whether ops currently record the graph. */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs `fn` without recording any graph and returns its result. */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Returns the number of elements of a shape. */
export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Returns row-major strides of a shape. */
export function stridesOf(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

function checkShape(shape: Shape, where: string): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new Error(`${where}: invalid shape [${shape.join(", ")}]`);
    }
  }
}

export class Tensor {
  readonly shape: Shape;
  readonly size: number;
  readonly dtype: DType;
  /**
   * Row-major contents: Int32Array for i32; for f32 a Float32Array or, once a device backend
   * has used the tensor, that backend's array.
   */
  data: Float32Array | Int32Array | DeviceArray;
  /** Whether gradients flow to this tensor. */
  requiresGrad: boolean;
  /** Accumulated gradient (leaf tensors keep it after backward), where the backend keeps it. */
  grad: FloatStore | null = null;
  /** The op that produced this tensor, while the graph is alive. */
  node: Node | null = null;
  /** Optional name (parameters use their checkpoint name). */
  name: string | undefined;

  constructor(data: Float32Array | Int32Array | DeviceArray, shape: Shape, requiresGrad = false) {
    checkShape(shape, "Tensor");
    const size = sizeOf(shape);
    if (data.length !== size) {
      throw new Error(
        `Tensor: data has ${data.length} elements but shape [${shape.join(", ")}] needs ${size}`,
      );
    }
    this.shape = Object.freeze([...shape]);
    this.size = size;
    this.data = data;
    this.dtype = data instanceof Int32Array ? "i32" : "f32";
    if (requiresGrad && this.dtype !== "f32") {
      throw new Error("Tensor: only float32 tensors can require gradients");
    }
    this.requiresGrad = requiresGrad;
  }

  /**
   * Returns the float32 contents in host memory; throws for an int tensor, and for one in
   * device memory (read it with `await tensor.read()`).
   */
  get f32(): Float32Array {
    const d = this.data;
    if (d instanceof Float32Array) return d;
    if (d instanceof Int32Array) throw new Error("expected a float32 tensor");
    throw new Error(
      `${this}: the values are in ${d.device} memory; read them with \`await tensor.read()\``,
    );
  }

  /**
   * Returns the float32 contents where the active backend keeps them, for passing to its
   * kernels: a host tensor used under a device backend is uploaded once and stays there.
   */
  get store(): FloatStore {
    const d = this.data;
    if (d instanceof Int32Array) throw new Error("expected a float32 tensor");
    const be = backend();
    if (be.device) {
      if (isHost(d)) this.data = be.upload(d);
      return this.data as FloatStore;
    }
    if (!isHost(d)) {
      throw new Error(
        `${this}: the values are in ${d.device} memory but the active backend is ${be.name}`,
      );
    }
    return d;
  }

  /** Returns the int32 contents, or throws for a float tensor. */
  get i32(): Int32Array {
    if (!(this.data instanceof Int32Array)) throw new Error("expected an int32 tensor");
    return this.data;
  }

  get rank(): number {
    return this.shape.length;
  }

  /** Returns the single value of a one-element host tensor (see `read` for any tensor). */
  item(): number {
    if (this.size !== 1) throw new Error(`item(): tensor has ${this.size} elements, not 1`);
    return this.dtype === "i32" ? this.i32[0]! : this.f32[0]!;
  }

  /** Returns a plain array copy of a host tensor's contents (see `read` for any tensor). */
  toArray(): number[] {
    return Array.from(this.dtype === "i32" ? this.i32 : this.f32);
  }

  /**
   * Returns a host copy of the contents once every op that produces them has run: works on
   * every backend, and is the only way to see a device tensor's values.
   */
  async read(): Promise<Float32Array | Int32Array> {
    const d = this.data;
    if (d instanceof Int32Array || d instanceof Float32Array) return d.slice();
    return backend().read(d, this.size);
  }

  /** As `read`, for a float tensor (throws for an int tensor). */
  async readF32(): Promise<Float32Array> {
    if (this.dtype !== "f32") throw new Error("expected a float32 tensor");
    return (await this.read()) as Float32Array;
  }

  /**
   * Overwrites the contents with `values` (as many as the tensor has). A device tensor's values
   * move to the host with them and go back to the device at their next use.
   */
  assign(values: ArrayLike<number>): void {
    if (values.length !== this.size) {
      throw new Error(`${this}: assign() got ${values.length} values for ${this.size} elements`);
    }
    const d = this.data;
    if (d instanceof Float32Array || d instanceof Int32Array) d.set(values);
    else this.data = Float32Array.from(values);
  }

  /** Moves the contents to host memory (nothing to do when they are there); see `store`. */
  async toHost(): Promise<void> {
    const d = this.data;
    if (d instanceof Float32Array || d instanceof Int32Array) return;
    this.data = await backend().read(d, this.size);
  }

  /** Returns the single value of a one-element tensor, on every backend. */
  async readItem(): Promise<number> {
    if (this.size !== 1) throw new Error(`readItem(): tensor has ${this.size} elements, not 1`);
    return (await this.read())[0]!;
  }

  /** Returns a tensor sharing this data, cut from the graph. */
  detach(): Tensor {
    return new Tensor(this.data, this.shape, false);
  }

  /** Returns a deep copy (no graph), where the contents are. */
  clone(): Tensor {
    const d = this.data;
    if (d instanceof Int32Array) return new Tensor(d.slice(), this.shape, false);
    return new Tensor(copyOf(this.store), this.shape, false);
  }

  /** Clears the accumulated gradient. */
  zeroGrad(): void {
    this.grad = null;
  }

  /**
   * Back-propagates from this tensor. A scalar needs no seed; otherwise pass the output
   * gradient. Gradients accumulate into `grad` of every tensor that requires one; the graph
   * is freed afterwards.
   */
  backward(seed?: FloatStore): void {
    if (!this.requiresGrad) throw new Error("backward(): tensor does not require gradients");
    let g = seed;
    if (!g) {
      if (this.size !== 1) throw new Error("backward(): non-scalar output needs a seed gradient");
      g = new Float32Array([1]);
    }
    if (g.length !== this.size) throw new Error("backward(): seed has the wrong size");
    const be = backend();
    runBackward(this, be.device && isHost(g) ? be.upload(g) : g);
  }

  toString(): string {
    return `Tensor(${this.dtype}, [${this.shape.join(", ")}])`;
  }
}

/** Returns a fresh copy of x on the active backend (not pooled: the copy may outlive a step). */
export function copyOf(x: FloatStore): FloatStore {
  if (isHost(x)) return x.slice();
  const be = backend();
  const out = be.alloc(x.length);
  be.axpy(x.length, 1, x, out);
  return out;
}

/** Adds g into t.grad. `owned` means g is a fresh buffer the tensor may keep. */
export function accumulateGrad(t: Tensor, g: FloatStore, owned: boolean): void {
  if (!t.requiresGrad) return;
  if (t.grad === null) {
    t.grad = owned ? g : copyOf(g);
  } else {
    backend().axpy(t.size, 1, g, t.grad);
  }
}

function runBackward(root: Tensor, seed: FloatStore): void {
  // Topological order by iterative DFS (graphs can be thousands of nodes deep).
  const order: Tensor[] = [];
  const visited = new Set<Tensor>();
  const stack: Array<[Tensor, number]> = [[root, 0]];
  visited.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const [t, i] = top;
    const inputs = t.node ? t.node.inputs : [];
    if (i < inputs.length) {
      top[1] = i + 1;
      const child = inputs[i]!;
      if (child.requiresGrad && !visited.has(child)) {
        visited.add(child);
        stack.push([child, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  accumulateGrad(root, seed, false);
  for (let i = order.length - 1; i >= 0; i--) {
    const t = order[i]!;
    const node = t.node;
    if (!node) continue;
    const g = t.grad;
    if (g) node.backward(g);
    // Interior gradients and the graph are dead once consumed.
    t.node = null;
    t.grad = null;
  }
}

/** Returns true if any input requires a gradient and recording is on. */
export function needsGrad(...inputs: Tensor[]): boolean {
  if (!gradEnabled) return false;
  for (const t of inputs) if (t.requiresGrad) return true;
  return false;
}

/** Attaches a backward rule to `out` when any input requires a gradient; returns `out`. */
export function record(
  op: string,
  out: Tensor,
  inputs: Tensor[],
  backwardFn: (gOut: FloatStore) => void,
): Tensor {
  if (needsGrad(...inputs)) {
    out.requiresGrad = true;
    out.node = { op, inputs, backward: backwardFn };
  }
  return out;
}

// ---- constructors ------------------------------------------------------------------------

/** Returns a float32 tensor of zeros. */
export function zeros(shape: Shape, requiresGrad = false): Tensor {
  checkShape(shape, "zeros");
  return new Tensor(alloc(sizeOf(shape)), shape, requiresGrad);
}

/** Returns a float32 tensor whose contents are undefined (for outputs a kernel overwrites). */
export function empty(shape: Shape): Tensor {
  checkShape(shape, "empty");
  return new Tensor(alloc(sizeOf(shape), true), shape, false);
}

/** Returns a float32 tensor filled with `value`. */
export function full(shape: Shape, value: number, requiresGrad = false): Tensor {
  checkShape(shape, "full");
  return new Tensor(new Float32Array(sizeOf(shape)).fill(value), shape, requiresGrad);
}

/** Returns a float32 tensor of ones. */
export function ones(shape: Shape, requiresGrad = false): Tensor {
  return full(shape, 1, requiresGrad);
}

/** Returns a float32 tensor from nested-free values and a shape. */
export function tensor(values: ArrayLike<number>, shape?: Shape, requiresGrad = false): Tensor {
  const data = Float32Array.from(values as ArrayLike<number>);
  return new Tensor(data, shape ?? [data.length], requiresGrad);
}

/** Returns an int32 tensor (token ids, targets). */
export function intTensor(values: ArrayLike<number>, shape?: Shape): Tensor {
  const data = Int32Array.from(values as ArrayLike<number>);
  return new Tensor(data, shape ?? [data.length], false);
}

/** Returns a tensor of normal samples (drawn on the host). */
export function randn(shape: Shape, rng: Rng, std = 1, requiresGrad = false): Tensor {
  checkShape(shape, "randn");
  const data = new Float32Array(sizeOf(shape));
  rng.fillNormal(data, 0, std);
  return new Tensor(data, shape, requiresGrad);
}

/** Returns a tensor of uniform samples in [lo, hi) (drawn on the host). */
export function rand(shape: Shape, rng: Rng, lo = 0, hi = 1, requiresGrad = false): Tensor {
  checkShape(shape, "rand");
  const data = new Float32Array(sizeOf(shape));
  rng.fillUniform(data, lo, hi);
  return new Tensor(data, shape, requiresGrad);
}
