/**
 * Compaction's pure rules (src/compact/levels.ts, key.ts, meta.ts, verify_chain.ts): level windows cut
 * at snapshots, which groups are closed, the restore path over page sets, keys and metadata round
 * trips, and how verify swaps a page set in where compaction deleted segments.
 */
import assert from "node:assert/strict";
import { pageSetKey, type PageSetObject, parsePageSetKey } from "../src/compact/key.ts";
import { contiguous, coveringSet, groupWindows, parseLevels, restorePath } from "../src/compact/levels.ts";
import {
  decodePageSetMeta,
  encodePageSetMeta,
  pageSetContinuity,
  stateAfterPageSet,
} from "../src/compact/meta.ts";
import { substituteCompacted } from "../src/compact/verify_chain.ts";
import type { BackupObject } from "../src/layout.ts";

const T0 = Date.UTC(2026, 0, 1);

function set(
  level: number,
  firstIndex: number,
  lastIndex: number,
  firstTime: number,
  time: number,
): PageSetObject {
  const key = pageSetKey("db", 1, level, { firstIndex, lastIndex, firstTime, lastTime: time });
  return parsePageSetKey(key, 100)!;
}

Deno.test("page set keys round-trip and sort by generation, level, then index", () => {
  const a = set(1, 0, 9, T0, T0 + 9000);
  assert.equal(a.level, 1);
  assert.equal(a.firstIndex, 0);
  assert.equal(a.lastIndex, 9);
  assert.equal(a.firstTime, T0);
  assert.equal(a.time, T0 + 9000);
  assert.equal(a.kind, "pages");
  const b = set(1, 10, 12, T0 + 10_000, T0 + 12_000);
  assert.ok(a.key < b.key);
  assert.equal(parsePageSetKey("db/wal/00000001-20260101000000000.wal"), null);
  assert.equal(
    parsePageSetKey(
      a.key.replace("-0000000009-", "-0000000000-").replace("0000000000-0000000000", "0000000005-0000000001"),
    ),
    null,
  );
});

Deno.test("levels: increasing, each a multiple of the one before", () => {
  assert.deepEqual(parseLevels("30s,5m,1h"), [30_000, 300_000, 3_600_000]);
  assert.deepEqual(parseLevels("1s, 2s ,4s"), [1000, 2000, 4000]);
  assert.throws(() => parseLevels("30s,45s"));
  assert.throws(() => parseLevels("5m,30s"));
  assert.throws(() => parseLevels("x"));
});

Deno.test("windows are cut at snapshots; only the last group can be open", () => {
  const items = [0, 1000, 29_000, 31_000, 45_000, 61_000].map((d) => ({ firstTime: T0 + d, time: T0 + d }));
  const snapshots = [T0 + 40_000];
  const groups = groupWindows(items, 30_000, snapshots, false, false);
  assert.deepEqual(groups.map((g) => g.items.length), [3, 1, 1, 1]);
  assert.deepEqual(groups.map((g) => g.closed), [true, true, true, false]);
  assert.equal(groupWindows(items, 30_000, snapshots, true).at(-1)!.closed, true, "a generation that ended");
  assert.equal(groupWindows(items, 30_000, snapshots, false, true).at(-1)!.closed, true, "something later");
});

Deno.test("restore path: the furthest set from exactly the next index, never past the target", () => {
  const l1 = [
    set(1, 0, 4, T0, T0 + 4000),
    set(1, 5, 9, T0 + 5000, T0 + 9000),
    set(1, 10, 14, T0 + 10_000, T0 + 14_000),
  ];
  const l2 = [set(2, 0, 9, T0, T0 + 9000)];
  const all = [...l1, ...l2];
  assert.deepEqual(restorePath(all, 0, Infinity).map((s) => s.key), [l2[0].key, l1[2].key]);
  assert.deepEqual(restorePath(all, 0, T0 + 13_000).map((s) => s.key), [l2[0].key]);
  assert.deepEqual(restorePath(all, 0, T0 + 8000).map((s) => s.key), [l1[0].key]);
  assert.deepEqual(restorePath(all, 3, Infinity), [], "no set starts at a snapshot inside one");
  assert.deepEqual(restorePath(all, 5, Infinity).map((s) => s.key), [l1[1].key, l1[2].key]);
  assert.ok(contiguous(l1));
  assert.ok(!contiguous([l1[0], l1[2]]));
  assert.equal(coveringSet(l1, T0 + 6000)?.key, l1[1].key);
  assert.equal(coveringSet(l1, T0 + 4500), undefined);
  assert.equal(coveringSet(l1, T0 + 20_000), undefined);
});

Deno.test("page set metadata round-trips; continuity is the first segment's, the state after the last's", () => {
  const before = {
    magic: 0x377f0682,
    checkpointSeq: 0,
    salt1: 7,
    salt2: 9,
    frame: 11,
    checksum: [1, 2] as const,
  };
  const after = { ...before, salt1: 8, salt2: 3, frame: 4, checksum: [5, 6] as const };
  const encoded = encodePageSetMeta({
    level: 2,
    pageSize: 4096,
    firstIndex: 3,
    lastIndex: 8,
    before,
    after,
    commitSize: 40,
    pageCount: 2,
  });
  const content = "a".repeat(64);
  const meta = decodePageSetMeta({
    ...encoded,
    compression: "none",
    encryption: "none",
    sha256: content,
    "content-sha256": content,
    "content-length": String(2 * 4100),
    "stored-length": String(2 * 4100),
  });
  assert.equal(meta.firstIndex, 3);
  assert.deepEqual(meta.after.checksum, [5, 6]);
  const state = stateAfterPageSet(meta);
  assert.equal(state.nextIndex, 9);
  assert.equal(state.pageCount, 40);
  assert.deepEqual(state.position, { salt1: 8, salt2: 3, frame: 4, checksum: [5, 6] });
  const chain = {
    pageSize: 4096,
    pageCount: 30,
    position: { salt1: 7, salt2: 9, frame: 10, checksum: [1, 2] as const },
    nextIndex: 3,
  };
  assert.equal(pageSetContinuity(chain, meta), null);
  assert.match(pageSetContinuity({ ...chain, nextIndex: 4 }, meta)!, /expected segment #4/);
  assert.match(pageSetContinuity({ ...chain, position: { ...chain.position, frame: 9 } }, meta)!, /frame/);
  assert.throws(() => decodePageSetMeta({ ...encoded, "content-length": "1" }));
});

Deno.test("verify walks segments where all are stored, the level-1 set where compaction deleted some", async () => {
  const seg = (i: number): BackupObject => ({
    key: `db/wal/s${i}`,
    name: "db",
    kind: "segment",
    generation: 1,
    time: T0 + i * 1000,
    size: 1,
  });
  const l1 = [
    set(1, 0, 2, T0, T0 + 2000),
    set(1, 3, 5, T0 + 3000, T0 + 5000),
    set(1, 6, 8, T0 + 6000, T0 + 8000),
  ];
  // Segments 0..1 deleted (kill -9 half way through a delete), 3..5 all gone, 6..8 all there, 9 not compacted.
  const stored = [2, 6, 7, 8, 9].map(seg);
  const walked = new Set<string>();
  const out: string[] = [];
  for await (
    const o of substituteCompacted(
      (async function* () {
        yield* stored;
      })(),
      l1,
      walked,
    )
  ) out.push(o.key);
  assert.deepEqual(out, [l1[0].key, l1[1].key, "db/wal/s6", "db/wal/s7", "db/wal/s8", "db/wal/s9"]);
  assert.deepEqual([...walked], [l1[0].key, l1[1].key]);
});
