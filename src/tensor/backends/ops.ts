/**
 * The names of the elementwise ops (`Backend.unary`, `Backend.binary`). An op's index in its
 * list is the integer code the native addon receives: the order must match the UnaryOp and
 * BinaryOp enums of native/kernels.h.
 */

export const UNARY_OPS = [
  "exp",
  "log",
  "sqrt",
  "rsqrt",
  "tanh",
  "sigmoid",
  "silu",
  "gelu",
  "relu",
  "neg",
  "abs",
  "square",
] as const;

export type UnaryOp = (typeof UNARY_OPS)[number];

export const BINARY_OPS = ["add", "sub", "mul", "div", "max", "min"] as const;

export type BinaryOp = (typeof BINARY_OPS)[number];

/** Index of an op in the lists above: the code the native addon receives. */
export function unaryCode(op: UnaryOp): number {
  return UNARY_OPS.indexOf(op);
}
export function binaryCode(op: BinaryOp): number {
  return BINARY_OPS.indexOf(op);
}
