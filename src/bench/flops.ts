/** The one FLOP-counting rule every bench and experiment uses, so figures are comparable. */
import { patchesPerImage } from "../model/config.js";
import type { Transfusion } from "../model/transfusion.js";

/**
 * Returns model FLOPs of one training step: 6·N·tokens + 12·L·T²·d·B, with N the parameters
 * of the transformer blocks and the output head. Attention is counted in full whatever the
 * kernels skip under the mask.
 */
export function trainStepFlops(
  blockAndHeadParams: number,
  layers: number,
  seqLen: number,
  dim: number,
  batch: number,
): number {
  const tokens = seqLen * batch;
  return 6 * blockAndHeadParams * tokens + 12 * layers * seqLen * seqLen * dim * batch;
}

/**
 * Returns the forward multiply-adds the patch codec spends on one image (timestep MLP and every
 * linear or convolution weight times the positions it is applied at), 0 for a model without one.
 */
export function codecMacsPerImage(model: Transfusion): number {
  const c = model.config;
  if (!model.imageCodec) return 0;
  const S = c.latentSize;
  const n = patchesPerImage(c);
  const levels = Math.round(Math.log2(c.patchSize));
  let macs = 0;
  for (const [name, p] of model.imageCodec.namedParameters()) {
    if (!name.endsWith("weight") || p.rank < 2) continue; // biases and norm gains
    if (p.rank === 2) {
      // Linear layers: the timestep MLPs and projections run once per image; the linear
      // codec's patch projections once per patch.
      macs += p.size * (name.startsWith("proj.") || name.startsWith("out.") ? n : 1);
      continue;
    }
    // Convolutions: weight size times output positions at the level the layer runs at.
    const level = /^(down|up)\.(\d+)\.(res|conv|downsample)/.exec(name);
    let side = S;
    if (level) side = S >> (Number(level[2]) + (level[3] === "downsample" ? 1 : 0));
    else if (/^(mid_down|mid_up|to_dim|from_dim)/.test(name)) side = S >> levels;
    macs += p.size * side * side;
  }
  return macs;
}

/**
 * Returns the training FLOPs of `steps` steps by the one rule every model family shares: the
 * transformer's 6·N·tokens + attention per step (N: block and head parameters, so the
 * discrete-token model's larger head counts), plus 6× the patch codec's multiply-adds for each
 * image trained (Transfusion only; the discrete model has no codec).
 */
export function runTrainingFlops(
  model: Transfusion,
  steps: number,
  rows: number,
  seqLen: number,
  imagesTrained: number,
): number {
  const c = model.config;
  const N = model.layers.reduce((s, b) => s + b.parameterCount(), 0) + model.head.parameterCount();
  const transformer = steps * trainStepFlops(N, c.layers, seqLen, c.dim, rows);
  return transformer + 6 * codecMacsPerImage(model) * imagesTrained;
}
