/** The one FLOP-counting rule every bench uses, so MFU figures are comparable. */

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
