/**
 * The continuity rule of a mid-generation snapshot (src/restore/continuity.ts, docs/design.md §5): it
 * sits at the chain's position, at a cleanly restarted empty WAL, or, after the application emptied
 * the WAL with a complete checkpoint (wal_checkpoint(TRUNCATE) while walsync's read transaction was
 * on the database file), at no WAL position at all; anything else is a break.
 */
import assert from "node:assert/strict";
import type { SnapshotMeta } from "../src/metadata.ts";
import { type ReplayState, snapshotContinuity } from "../src/restore/continuity.ts";

const position = { salt1: 100, salt2: 7, frame: 42, checksum: [1, 2] as [number, number] };
const chain: ReplayState = { pageSize: 4096, pageCount: 341, position, nextIndex: 39 };

function snapshot(over: Partial<SnapshotMeta>): SnapshotMeta {
  return {
    pageSize: 4096,
    pageCount: 341,
    position,
    segmentsBefore: 39,
    contentSha256: "00",
    stored: { compression: "none", encryption: "none" },
    ...over,
  } as SnapshotMeta;
}

Deno.test("a mid-generation snapshot continues the chain at its position, a restarted or an emptied WAL", () => {
  assert.equal(snapshotContinuity(chain, snapshot({})), null);
  const restarted = { salt1: 101, salt2: 9, frame: 0, checksum: [3, 4] as [number, number] };
  assert.equal(snapshotContinuity(chain, snapshot({ position: restarted })), null);
  // The WAL truncated to nothing after a complete checkpoint: the database file is the chain's state.
  assert.equal(snapshotContinuity(chain, snapshot({ position: null })), null);
  assert.equal(snapshotContinuity({ ...chain, position: null }, snapshot({ position: null })), null);
});

Deno.test("a mid-generation snapshot that does not sit at the chain's state breaks it", () => {
  assert.match(snapshotContinuity(chain, snapshot({ segmentsBefore: 40 }))!, /taken after 40 segment/);
  assert.match(snapshotContinuity(chain, snapshot({ pageCount: 342, position: null }))!, /342 pages/);
  assert.match(snapshotContinuity(chain, snapshot({ position: { ...position, frame: 41 } }))!, /not the end/);
  // Frames at the snapshot that the chain never held.
  assert.match(
    snapshotContinuity({ ...chain, position: null }, snapshot({}))!,
    /does not continue the chain/,
  );
});
