/**
 * Retention rules (src/lifecycle/retention.ts) on hand-made histories: what is deleted and what is
 * kept for a horizon. The end-to-end behaviour (real watch, RGW, file://) is in lifecycle_prune_test.ts.
 */
import assert from "node:assert/strict";
import { type BackupObject, segmentKey, snapshotKey } from "../src/layout.ts";
import type { DatabaseHistory, GenerationHistory } from "../src/log/history.ts";
import { belowHorizon, planDeletes, planRetention } from "../src/lifecycle/retention.ts";
import { parseRetention } from "../src/lifecycle/options.ts";
import { contentMd5, deleteErrors, deleteRequestXml } from "../src/storage/multi_delete.ts";

const NAME = "db";

function snap(generation: number, time: number): BackupObject {
  return {
    key: snapshotKey(NAME, generation, time),
    name: NAME,
    kind: "snapshot",
    generation,
    time,
    size: 100,
  };
}
function seg(generation: number, time: number): BackupObject {
  return { key: segmentKey(NAME, generation, time), name: NAME, kind: "segment", generation, time, size: 10 };
}

/** A generation with snapshots at `snaps` and segments at `segs` (times in ms). */
function gen(generation: number, snaps: number[], segs: number[]): GenerationHistory {
  const segments = segs.map((t) => seg(generation, t));
  return {
    generation,
    snapshots: snaps.map((t) => snap(generation, t)),
    segments: segments.length
      ? {
        count: segments.length,
        bytes: segments.length * 10,
        first: segments[0],
        last: segments.at(-1)!,
        lastAtOrBefore: segments.at(-1)!,
      }
      : null,
  };
}

function history(...generations: GenerationHistory[]): DatabaseHistory {
  return { name: NAME, generations, others: [] };
}

Deno.test("retention: keeps the newest snapshot at or before the horizon and drops what precedes it", () => {
  const db = history(
    gen(1, [100], [110, 120]),
    gen(2, [200, 300, 400], [210, 220, 310, 320, 410]),
  );
  const plan = planRetention(db, 350);
  assert.equal(plan.keep?.key, snapshotKey(NAME, 2, 300));
  assert.deepEqual(plan.wholeGenerations.map((g) => g.generation), [1]);
  assert.deepEqual(plan.olderSnapshots.map((s) => s.time), [200]);
  assert.equal(plan.olderSegments, true);
  assert.equal(plan.restorableFrom, 300);
  assert.ok(planDeletes(plan));
});

Deno.test("retention: a horizon exactly at a snapshot keeps that snapshot", () => {
  const plan = planRetention(history(gen(1, [100, 200], [150, 250])), 200);
  assert.equal(plan.keep?.time, 200);
  assert.deepEqual(plan.olderSnapshots.map((s) => s.time), [100]);
});

Deno.test("retention: no snapshot old enough, or retention forever: nothing goes", () => {
  const db = history(gen(1, [100], [110]), gen(2, [200], [210]));
  for (const horizon of [50, 0, -Infinity]) {
    const plan = planRetention(db, horizon);
    assert.equal(plan.keep, null);
    assert.equal(planDeletes(plan), false);
    assert.equal(plan.restorableFrom, 100);
  }
});

Deno.test("retention: the newest generation's newest snapshot and its tail are never deleted", () => {
  // A horizon far in the future (retention shorter than the time since the last write).
  const db = history(gen(1, [100], [110]), gen(2, [200, 300], [210, 310, 320]));
  const plan = planRetention(db, 10_000);
  assert.equal(plan.keep?.key, snapshotKey(NAME, 2, 300));
  assert.deepEqual(plan.wholeGenerations.map((g) => g.generation), [1]);
  assert.deepEqual(plan.olderSnapshots.map((s) => s.time), [200]);
  // Everything at or after the kept snapshot stays visible.
  for (const t of [300, 310, 320]) assert.equal(belowHorizon(seg(2, t), plan.keep!), false);
  assert.equal(belowHorizon(seg(2, 210), plan.keep!), true);
  assert.equal(belowHorizon(snap(1, 100), plan.keep!), true);
});

Deno.test("retention: a horizon in a gap between generations keeps the older generation's last state", () => {
  // Generation 1 ends at 150; generation 2 starts at 300; a restore of 200 gives generation 1's end.
  const db = history(gen(1, [100], [120, 150]), gen(2, [300], [310]));
  const plan = planRetention(db, 200);
  assert.equal(plan.keep?.key, snapshotKey(NAME, 1, 100));
  assert.equal(planDeletes(plan), false);
});

Deno.test("retention: a generation without snapshots before the kept one goes whole; one after it stays", () => {
  const db = history(gen(1, [], [50, 60]), gen(2, [100], [110]), gen(3, [], [400]));
  const plan = planRetention(db, 200);
  assert.equal(plan.keep?.generation, 2);
  assert.deepEqual(plan.wholeGenerations.map((g) => g.generation), [1]);
});

Deno.test("retention flag: durations, 0 and forever", () => {
  assert.equal(parseRetention(undefined), 24 * 3_600_000);
  assert.equal(parseRetention("20s"), 20_000);
  assert.equal(parseRetention("7d"), 7 * 86_400_000);
  assert.equal(parseRetention("90"), 90_000);
  assert.equal(parseRetention("0"), null);
  assert.equal(parseRetention("forever"), null);
  assert.throws(() => parseRetention("soon"), /invalid --retention "soon"/);
  assert.throws(() => parseRetention("-5s"), /invalid --retention/);
});

Deno.test("multi-object delete: the request escapes keys, the answer's errors are read", () => {
  const xml = deleteRequestXml(["p/a&b.wal", "p/<c>.db"]);
  assert.match(xml, /<Quiet>true<\/Quiet>/);
  assert.match(xml, /<Key>p\/a&amp;b\.wal<\/Key><\/Object><Object><Key>p\/&lt;c&gt;\.db<\/Key>/);
  // The MD5 S3 checks (RFC 1864: base64 of the binary digest).
  assert.equal(contentMd5("hello"), "XUFAKrxLKna5cZ2REBfFkg==");
  const answer = `<?xml version="1.0"?><DeleteResult><Deleted><Key>x</Key></Deleted>` +
    `<Error><Key>p/k1.wal</Key><Code>AccessDenied</Code><Message>no</Message></Error></DeleteResult>`;
  assert.deepEqual(deleteErrors(answer), [{ key: "p/k1.wal", code: "AccessDenied", message: "no" }]);
  assert.deepEqual(deleteErrors(`<DeleteResult></DeleteResult>`), []);
});
