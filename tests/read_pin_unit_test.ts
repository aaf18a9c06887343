/**
 * The rule that lets the read pin move (src/watch/read_pin.ts, docs/design.md §4): only when the
 * capture holds every frame the old read transaction could see.
 */
import assert from "node:assert/strict";
import { capturedThrough } from "../src/watch/read_pin.ts";
import type { WalPosition } from "../src/wal.ts";

const at = (salt1: number, frame: number, salt2 = 7): WalPosition => ({
  salt1,
  salt2,
  frame,
  checksum: [0, 0],
});
const view = (salt1: number, mxFrame: number, salt2 = 7) => ({ salt1, salt2, mxFrame });

Deno.test("read pin: the capture must reach the old view's end in its cycle", () => {
  assert.equal(capturedThrough(at(5, 100), view(5, 100)), true);
  assert.equal(capturedThrough(at(5, 120), view(5, 100)), true);
  assert.equal(capturedThrough(at(5, 99), view(5, 100)), false, "a frame of the view not captured");
  assert.equal(capturedThrough(at(5, 100, 8), view(5, 100)), false, "another cycle with the same salt-1");
});

Deno.test("read pin: a later cycle covers the view; an earlier one, an unknown view or no tip do not", () => {
  assert.equal(capturedThrough(at(6, 1), view(5, 4000)), true, "captured across a restart");
  assert.equal(capturedThrough(at(0, 3), view(0xffff_ffff, 10)), true, "salt-1 wraps");
  assert.equal(capturedThrough(at(4, 4000), view(5, 3)), false, "the capture is a cycle behind");
  assert.equal(capturedThrough(at(5, 100), null), false, "unknown view: never assume");
  assert.equal(capturedThrough(null, view(5, 3)), false);
});

Deno.test("read pin: a view without frames needs nothing captured", () => {
  assert.equal(capturedThrough(null, view(5, 0)), true);
  assert.equal(capturedThrough(at(4, 10), view(5, 0)), true);
});
