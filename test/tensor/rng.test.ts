// The seeded RNG: determinism, state round trip, and distribution sanity.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Rng } from "../../src/tensor/rng.js";

test("same seed gives the same stream; different seeds differ", () => {
  const a = new Rng(42);
  const b = new Rng(42);
  const c = new Rng(43);
  const xa = Array.from({ length: 100 }, () => a.nextU32());
  const xb = Array.from({ length: 100 }, () => b.nextU32());
  const xc = Array.from({ length: 100 }, () => c.nextU32());
  assert.deepEqual(xa, xb);
  assert.notDeepEqual(xa, xc);
});

test("getState/setState resumes exactly, including a cached normal", () => {
  const a = new Rng(7);
  a.normal(); // leaves a spare normal cached
  const state = a.getState();
  const next = [a.normal(), a.uniform(), a.normal()];
  const b = new Rng(0);
  b.setState(state);
  assert.deepEqual([b.normal(), b.uniform(), b.normal()], next);
});

test("uniform and normal have the right moments", () => {
  const r = new Rng(1);
  const n = 200_000;
  let su = 0;
  let sn = 0;
  let sn2 = 0;
  for (let i = 0; i < n; i++) {
    const u = r.uniform();
    assert.ok(u >= 0 && u < 1);
    su += u;
    const z = r.normal();
    sn += z;
    sn2 += z * z;
  }
  assert.ok(Math.abs(su / n - 0.5) < 0.005);
  assert.ok(Math.abs(sn / n) < 0.01);
  assert.ok(Math.abs(sn2 / n - 1) < 0.01);
});
