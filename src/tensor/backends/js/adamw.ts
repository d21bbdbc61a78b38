/**
 * The fused AdamW optimiser step of the js backend.
 */

import type { Backend } from "../backend.js";

export const adamwKernels: Pick<Backend, "adamw"> = {
  /**
   * Updates p, m and v in place by one AdamW step with decoupled weight decay:
   * ĝ = g·gradScale; m = β1·m + (1−β1)·ĝ; v = β2·v + (1−β2)·ĝ²;
   * p −= lr·(m/bc1 / (√(v/bc2) + eps) + weightDecay·p), where the decay uses p before the
   * step. The step is computed in float64 from the new m and v before they are rounded to
   * float32.
   */
  adamw(p, g, m, v, n, lr, beta1, beta2, eps, weightDecay, bc1, bc2, gradScale) {
    for (let i = 0; i < n; i++) {
      const grad = g[i]! * gradScale;
      const mi = beta1 * m[i]! + (1 - beta1) * grad;
      const vi = beta2 * v[i]! + (1 - beta2) * grad * grad;
      m[i] = mi;
      v[i] = vi;
      const update = mi / bc1 / (Math.sqrt(vi / bc2) + eps) + weightDecay * p[i]!;
      p[i] = p[i]! - lr * update;
    }
  },
};
