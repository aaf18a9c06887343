/**
 * Diagnostic (not part of `deno task bench`): can a committed transaction stay unshipped while the
 * database is idle? (See "Findings" in bench/RESULTS.md.)
 *
 * usage: deno run -A bench/diag_unshipped.ts
 *
 * Drives walsync's replica in this process (file:// store in RAM) with a writer connection: after
 * the first checkpoint (SQLite then rewrites the WAL in place, so its size stops changing) it
 * repeats "commit A, sync round, commit B at once, sync round". When B was not shipped, it runs
 * three more sync rounds one second apart with no writes, as `watch` would, and reports whether B
 * is still unshipped, with the WAL's `size:mtime` (what the replica compares) before and after B.
 * Stops after 3 such cases or 20,000 commits. Exit code 1 if a commit stayed unshipped.
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { WATCH_DEFAULTS } from "../src/commands/watch.ts";
import { configureLog } from "../src/log.ts";
import { FileStore } from "../src/storage/file.ts";
import { Replica } from "../src/watch/replica.ts";

const walSeen = (path: string) => {
  const s = Deno.statSync(path);
  return `${s.size}:${s.mtime?.getTime()}`;
};

configureLog({ quiet: true });
const dir = await Deno.makeTempDir({ dir: "/dev/shm", prefix: "walsync-diag-" });
const db = `${dir}/app.db`;
const writer = new DatabaseSync(db);
writer.exec(
  "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)",
);
const insert = writer.prepare("INSERT INTO t(v) VALUES (randomblob(100))");
const replica = new Replica(db, "app", new FileStore(`${dir}/backup`), {
  ...WATCH_DEFAULTS,
  snapshotIntervalMs: Number.MAX_SAFE_INTEGER,
});
let tries = 0;
let stuck = 0;
try {
  await replica.start();
  for (let i = 0; i < 20_000 && stuck < 3; i++) {
    insert.run(); // commit A
    await replica.sync();
    if (replica.stats.checkpoints === 0) continue; // the WAL still grows: its size changes
    tries++;
    const shipped = replica.stats.segments;
    const before = walSeen(`${db}-wal`);
    insert.run(); // commit B, right after the round
    const after = walSeen(`${db}-wal`);
    await replica.sync();
    if (replica.stats.segments !== shipped) continue;
    for (let k = 0; k < 3; k++) {
      await new Promise((r) => setTimeout(r, 1000));
      await replica.sync();
    }
    const still = replica.stats.segments === shipped;
    if (still) stuck++;
    console.log(
      JSON.stringify({ try: tries, unshippedAfter3IdleRounds: still, walBefore: before, walAfter: after }),
    );
  }
  console.log(JSON.stringify({ tries, stuck }));
  await replica.stop(); // ships it
} finally {
  writer.close();
  await Deno.remove(dir, { recursive: true });
}
if (stuck) Deno.exit(1);
