/**
 * The fused AdamW optimiser step of the js backend.
 */

/**
 * Updates p, m and v in place by one AdamW step with decoupled weight decay:
 * ĝ = g·gradScale; m = β1·m + (1−β1)·ĝ; v = β2·v + (1−β2)·ĝ²;
 * p −= lr·(m/bc1 / (√(v/bc2) + eps) + weightDecay·p), where the decay uses p before the step.
 * The step is computed in float64 from the new m and v before they are rounded to float32.
 */
export function adamw(
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  n: number,
  lr: number,
  beta1: number,
  beta2: number,
  eps: number,
  weightDecay: number,
  bc1: number,
  bc2: number,
  gradScale: number,
): void {
  for (let i = 0; i < n; i++) {
    const grad = g[i]! * gradScale;
    const mi = beta1 * m[i]! + (1 - beta1) * grad;
    const vi = beta2 * v[i]! + (1 - beta2) * grad * grad;
    m[i] = mi;
    v[i] = vi;
    const update = mi / bc1 / (Math.sqrt(vi / bc2) + eps) + weightDecay * p[i]!;
    p[i] = p[i]! - lr * update;
  }
}
