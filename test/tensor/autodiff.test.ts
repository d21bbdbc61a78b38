// The tape itself: accumulation, noGrad, detach, graph release, and error messages.
import assert from "node:assert/strict";
import { test } from "node:test";
import { add, mul, sum } from "../../src/tensor/ops/index.js";
import { noGrad, Tensor, tensor } from "../../src/tensor/tensor.js";
import { hostGrad } from "../helpers.js";

test("gradients accumulate across backward calls until cleared", () => {
  const x = tensor([1, 2, 3], [3], true);
  sum(mul(x, x)).backward();
  sum(mul(x, x)).backward();
  assert.deepEqual(Array.from(hostGrad(x)!), [4, 8, 12]);
  x.zeroGrad();
  assert.equal(x.grad, null);
});

test("a tensor used twice receives both contributions", () => {
  const x = tensor([3], [1], true);
  const y = add(mul(x, x), x); // dy/dx = 2x + 1 = 7
  y.backward(new Float32Array([1]));
  assert.deepEqual(Array.from(hostGrad(x)!), [7]);
});

test("noGrad records nothing and detach cuts the graph", () => {
  const x = tensor([1, 2], [2], true);
  const y = noGrad(() => mul(x, x));
  assert.equal(y.requiresGrad, false);
  assert.equal(y.node, null);
  const z = mul(x.detach(), x);
  sum(z).backward();
  assert.deepEqual(Array.from(hostGrad(x)!), [1, 2]);
});

test("backward frees the graph and interior gradients", () => {
  const x = tensor([1, 2], [2], true);
  const h = mul(x, x);
  const y = sum(h);
  y.backward();
  assert.equal(h.node, null);
  assert.equal(h.grad, null);
  assert.equal(y.node, null);
  assert.ok(x.grad);
});

test("shape errors name the op and shapes", () => {
  assert.throws(
    () => add(tensor([1, 2, 3]), tensor([1, 2])),
    /add: shapes \[3\] and \[2\] do not broadcast/,
  );
  assert.throws(
    () => new Tensor(new Float32Array(3), [2, 2]),
    /3 elements but shape \[2, 2\] needs 4/,
  );
  assert.throws(() => tensor([1, 2]).backward(), /does not require gradients/);
});
