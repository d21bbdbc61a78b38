// The checkpoint fingerprints are SHA-256 digests computed by our own hasher, so that a web
// page checks them synchronously as Node does: it must agree with node:crypto byte for byte.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import { Sha256, sha256Hex } from "../../src/io/sha256.js";
import { Rng } from "../../src/tensor/rng.js";

const nodeHex = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");

test("sha256Hex equals node:crypto on every length around the block and padding edges", () => {
  const rng = new Rng(3);
  for (let n = 0; n <= 200; n++) {
    const b = Uint8Array.from({ length: n }, () => rng.int(256));
    assert.equal(sha256Hex(b), nodeHex(b), `length ${n}`);
  }
  assert.equal(
    sha256Hex("abc"),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  assert.equal(sha256Hex("héllo ✓ 𝄞"), nodeHex("héllo ✓ 𝄞"), "strings hash as UTF-8");
});

test("fed in pieces of any size, the digest is the same", () => {
  const rng = new Rng(5);
  const b = Uint8Array.from({ length: 5000 }, () => rng.int(256));
  for (const piece of [1, 7, 63, 64, 65, 1000]) {
    const h = new Sha256();
    for (let at = 0; at < b.length; at += piece) h.update(b.subarray(at, at + piece));
    assert.equal(h.hex(), nodeHex(b), `pieces of ${piece}`);
  }
  const h = new Sha256().update("x");
  h.hex();
  assert.throws(() => h.update("y"), /update after hex/);
});
