/**
 * Moving the read pin without letting go (issue #9, docs/design.md §4), with real processes and the
 * checkpoint paused at exactly the moments that matter (test hooks `pause-before-advance` and
 * `pause-after-advance`):
 *
 * 1. a checkpoint is due; just before its first attempt moves R, the application commits a
 *    transaction too big for the barrier's spool (12 MB, the spool takes 8 MiB);
 * 2. R moves past it and the commit is backfilled; the barrier cannot spool it and gives up the
 *    attempt;
 * 3. the second attempt moves R again. The WAL is fully backfilled, so the new R sits on read-mark 0,
 *    which does not stop a WAL restart; the application commits once more and SQLite restarts the WAL.
 *
 * The 12 MB commit must have been captured before step 3 (walsync ships before every move of R);
 * otherwise the restart overwrites it unseen and the backup silently misses it. This is how a
 * compaction oracle run lost a VACUUM: a point-in-time restore failed its integrity check.
 */
import assert from "node:assert/strict";
import {
  filesEqual,
  freshBackend,
  sleep,
  spawnWatch,
  sqlite3,
  tempDir,
  walSalt1,
  walsync,
} from "./helpers.ts";

const noSanitizers = { sanitizeOps: false, sanitizeResources: false };

/** Waits until `path` exists (the watcher paused there); throws after `timeoutMs`. */
async function paused(path: string, timeoutMs = 30_000): Promise<void> {
  for (let waited = 0; waited < timeoutMs; waited += 20) {
    try {
      await Deno.stat(path);
      return;
    } catch { /* not yet */ }
    await sleep(20);
  }
  throw new Error(`watch never paused at ${path}`);
}

Deno.test({
  name:
    "[file] a commit too big for the spool, then a WAL restart while the checkpoint moves R again: nothing is lost",
  ...noSanitizers,
  fn: async () => {
    const backend = await freshBackend("file");
    const dir = await tempDir();
    const db = `${dir}/advance.db`;
    await sqlite3(
      db,
      "PRAGMA journal_mode=WAL; CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB NOT NULL);" +
        "INSERT INTO t(v) SELECT randomblob(100) FROM generate_series(1, 50);",
    );
    const before = `${db}.walsync-pause-before-advance`;
    const after = `${db}.walsync-pause-after-advance`;
    const watch = spawnWatch(
      [db, "-b", backend.url, "--sync-interval", "100ms", "--checkpoint-frames", "60", "--verbose"],
      { ...backend.env, WALSYNC_TEST_HOOK: "pause-before-advance,pause-after-advance" },
    );
    try {
      assert.ok(await watch.waitFor(/watching 1 database/, 30_000), "watch started");
      // Enough frames for a checkpoint to fall due.
      for (let i = 0; i < 8; i++) {
        await sqlite3(db, "INSERT INTO t(v) SELECT randomblob(3000) FROM generate_series(1, 10);");
      }
      // Attempt 1, before R moves: a commit of ~3,000 pages (too big for the spool).
      await paused(before);
      await sqlite3(db, "INSERT INTO t(v) SELECT randomblob(3900) FROM generate_series(1, 3000);");
      const cycle = walSalt1(`${db}-wal`);
      await Deno.remove(before);
      await paused(after);
      await Deno.remove(after);
      // Attempt 2: R moves again, onto a fully backfilled WAL; then the application commits.
      await paused(before);
      await Deno.remove(before);
      await paused(after);
      await sqlite3(db, "INSERT INTO t(v) VALUES (randomblob(10));");
      assert.notEqual(walSalt1(`${db}-wal`), cycle, "the application's commit restarted the WAL");
      await Deno.remove(after);
      // Let any later checkpoint run unpaused while the last commit is shipped.
      const release = setInterval(() => {
        for (const marker of [before, after]) Deno.remove(marker).catch(() => {});
      }, 20);
      try {
        await sleep(1500);
        const { code, stderr } = await watch.stop("SIGINT");
        assert.equal(code, 0, stderr);
        assert.doesNotMatch(
          stderr,
          /starting generation 2/,
          "the restart was continuous: nothing to start over",
        );
      } finally {
        clearInterval(release);
      }
    } finally {
      if (!watch.exited()) await watch.stop("SIGKILL");
    }
    const out = `${dir}/restored.db`;
    const r = await walsync(["restore", "advance", "-o", out, "-b", backend.url], { env: backend.env });
    assert.equal(r.code, 0, r.stderr);
    await sqlite3(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    assert.equal(await sqlite3(out, "SELECT count(*) FROM t"), await sqlite3(db, "SELECT count(*) FROM t"));
    assert.ok(await filesEqual(out, db), "the latest restore must equal the source byte for byte");
  },
});
