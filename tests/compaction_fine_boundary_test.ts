/**
 * The fine-history boundary of compaction (docs/design.md §11.1): a level-1 set that straddles the
 * cutoff keeps all its segments, so every target inside the fine history restores to the last
 * segment at or before it. Deleting the older half of that set's segments left the newer half
 * unreachable: a target between them and the set's end got only level-1 precision.
 *
 * A real `watch` (compaction off) backs up an independent writer committing about ten times a second;
 * then one compaction pass runs with its cutoff placed between two segments of one level-1 window.
 */
import assert from "node:assert/strict";
import { compactDatabase } from "../src/compact/compact.ts";
import { openStore } from "../src/storage/open.ts";
import {
  freshBackend,
  keyTime,
  listObjects,
  mustRun,
  sqlite3,
  startWatch,
  tempDir,
  walsync,
} from "./helpers.ts";

const L1_MS = 1000;

const WRITER = `
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
end = time.time() + float(sys.argv[2])
n = 0
while time.time() < end:
    n += 1
    db.execute("INSERT INTO t(v) VALUES (?)", (n,))
    time.sleep(0.08)
`;

Deno.test("compaction: a level-1 set reaching into the fine history keeps its segments; targets there restore exactly", async () => {
  const dir = await tempDir();
  const db = `${dir}/app.db`;
  await sqlite3(db, "PRAGMA journal_mode=WAL; CREATE TABLE t(id INTEGER PRIMARY KEY, v)");
  const backend = await freshBackend("file");
  const watch = await startWatch([
    db,
    "-b",
    backend.url,
    "--sync-interval",
    "100ms",
    "--compaction-levels",
    "off",
  ]);
  await mustRun("python3", ["-c", WRITER, db, "4.5"]);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal((await watch.stop("SIGINT")).code, 0);

  const segmentTimes = async () =>
    (await listObjects(backend)).filter((o) => /\/wal\//.test(o.key)).map((o) => keyTime(o.key));
  const before = await segmentTimes();
  // A closed window with segments on both sides of a cutoff in its middle, and a whole window before it.
  const windows = Map.groupBy(before, (t) => Math.floor(t / L1_MS));
  const [window] = [...windows.entries()].find(([w, times]) =>
    times.length >= 4 && windows.has(w - 1) && windows.has(w + 1)
  )!;
  const inWindow = windows.get(window)!;
  const cutoff = Math.floor((inWindow[1] + inWindow[2]) / 2);

  const store = openStore(backend.url);
  const result = await compactDatabase(store, "app", { levelsMs: [L1_MS], fineHistoryMs: 0, now: cutoff });
  assert.ok(result.built[0] >= 3, `level-1 sets built: ${result.built}`);
  const after = await segmentTimes();
  assert.ok(after.length < before.length, "segments of windows wholly before the cutoff are deleted");
  assert.ok(after.every((t) => t >= window * L1_MS), "only windows before the straddling one lose segments");
  assert.deepEqual(
    after.filter((t) => Math.floor(t / L1_MS) === window),
    inWindow,
    "the straddling set keeps all its segments",
  );

  // Every target after the cutoff restores to the last segment at or before it.
  for (const segment of inWindow.filter((t) => t > cutoff)) {
    const target = segment + 1;
    const out = `${dir}/at-${segment}.db`;
    const r = await walsync([
      "restore",
      "app",
      "-o",
      out,
      "-b",
      backend.url,
      "--point-in-time",
      new Date(target).toISOString(),
      "--json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      JSON.parse(r.stdout).time,
      new Date(segment).toISOString(),
      `a restore at ${new Date(target).toISOString()} reaches the segment just before it`,
    );
  }
  const verified = await walsync(["verify", "-b", backend.url]);
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);
});
