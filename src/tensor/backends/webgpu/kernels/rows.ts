/**
 * WGSL helpers of the row-wise kernels (softmax, losses, norms, attention): one workgroup of
 * 64 invocations per row, which stride over the row's columns and combine their partial
 * results by a tree in workgroup memory. 64 is a multiple of the SIMD width on every vendor
 * and keeps short rows (a few dozen columns) from idling most of the workgroup.
 * The helpers contain barriers, so they must be called in uniform control flow (every
 * invocation of the workgroup, no early return before them).
 *
 * Each helper also starts with a barrier. WGSL's rules do not need it (the previous call ends
 * with one after every invocation has read the result), but Dawn's OpenGL backend on Mesa
 * (llvmpipe) lets a call's first write to `red` overtake the previous call's read of red[0]:
 * every kernel that reduces twice (GroupNorm's mean and variance, attention) then went wrong
 * there, and right with the extra barrier.
 */

export const ROW_WGSL = /* wgsl */ `
// The lowest finite float32: the start of a running maximum (WGSL constants cannot be infinite).
const LOWEST: f32 = -0x1.fffffep+127f;
var<workgroup> red: array<f32, WG>;

fn rowSum(li: u32, v: f32) -> f32 {
  workgroupBarrier();
  red[li] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (li < s) { red[li] += red[li + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

fn rowMax(li: u32, v: f32) -> f32 {
  workgroupBarrier();
  red[li] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (li < s) { red[li] = max(red[li], red[li + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
`;
