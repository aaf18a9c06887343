/**
 * The write-lock barrier and the read pin (issue #9), with real processes:
 * - the store unreachable for ~15 s while walsync's checkpoints fall due, under an application whose
 *   busy timeout is 100 ms: it never sees SQLITE_BUSY, loses no commit, the latest restore is exact;
 * - walsync killed right after a checkpoint, before its spooled remainder was uploaded: the next
 *   start sees the WAL restarted without those frames and starts a new generation;
 * - starting the read transaction again after a checkpoint fails: the next restart is not accepted
 *   as continuous, a new generation starts with the reason.
 */
import assert from "node:assert/strict";
import { startFaultProxy } from "./fixtures/fault_proxy.ts";
import {
  filesEqual,
  freshBackend,
  mustRun,
  s3Settings,
  sleep,
  spawnLines,
  spawnWatch,
  sqlite3,
  startWatch,
  tempDir,
  walSalt1,
  walsync,
  type WatchProcess,
  WRITER,
  writer,
} from "./helpers.ts";

const noSanitizers = { sanitizeOps: false, sanitizeResources: false };

function proxyTarget() {
  const url = new URL(s3Settings().endpoint);
  return { hostname: url.hostname, port: Number(url.port || 80) };
}

/** Restores the latest state of `name` and asserts it equals `db` after a full checkpoint. */
async function assertLatestRestoreEquals(
  backend: { url: string; env: Record<string, string> },
  name: string,
  db: string,
) {
  const out = `${await tempDir()}/restored.db`;
  const r = await walsync(["restore", name, "-o", out, "-b", backend.url], { env: backend.env });
  assert.equal(r.code, 0, r.stderr);
  await sqlite3(db, "PRAGMA wal_checkpoint(TRUNCATE)");
  assert.ok(await filesEqual(out, db), "the latest restore must equal the source byte for byte");
  const verify = await walsync(["verify", "-b", backend.url, name], { env: backend.env });
  assert.equal(verify.code, 0, `verify must pass:\n${verify.stdout}${verify.stderr}`);
}

/**
 * An application with a 100 ms busy timeout: BEGIN IMMEDIATE, one row, COMMIT, every 10 ms, for
 * SECONDS. Counts every failure (SQLITE_BUSY included) instead of stopping; prints a JSON summary.
 */
const IMPATIENT_WRITER = `
import json, sqlite3, sys, time
path, seconds = sys.argv[1], float(sys.argv[2])
db = sqlite3.connect(path, isolation_level=None, timeout=0.1)
db.execute("PRAGMA journal_mode=WAL")
db.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v BLOB NOT NULL)")
i = db.execute("SELECT coalesce(max(id), 0) FROM t").fetchone()[0] + 1
commits, failures, errors = 0, 0, []
deadline = time.time() + seconds
while time.time() < deadline:
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t VALUES (?, randomblob(300))", (i,))
        db.execute("COMMIT")
        i += 1
        commits += 1
    except sqlite3.Error as e:
        failures += 1
        errors.append(f"{time.time():.3f} {e}")
        try:
            db.execute("ROLLBACK")
        except sqlite3.Error:
            pass
    time.sleep(0.01)
print(json.dumps({"commits": commits, "failures": failures, "last": i - 1, "errors": errors[:10]}))
`;

Deno.test({
  name:
    "[s3] store unreachable for 15 s while checkpoints fall due: an application with a 100 ms busy timeout never sees SQLITE_BUSY, nothing lost",
  ...noSanitizers,
  fn: async () => {
    const proxy = startFaultProxy(proxyTarget());
    try {
      const backend = await freshBackend("s3");
      const dir = await tempDir();
      const db = `${dir}/impatient.db`;
      await writer("fill", db, "20");
      const env = {
        ...backend.env,
        AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${proxy.port}`,
        WALSYNC_S3_TIMEOUT_MS: "2000",
      };
      const watch = await startWatch(
        [db, "-b", backend.url, "--sync-interval", "1", "--checkpoint-frames", "20"],
        env,
      );
      const app = new Deno.Command("python3", { args: ["-c", IMPATIENT_WRITER, db, "32"], stdout: "piped" })
        .output();
      // Start the outage half a round after a checkpoint restarted the WAL: the next round is one
      // whose checkpoint is due (the old engine shipped inside the barrier, holding the lock).
      let salt = walSalt1(`${db}-wal`);
      let restarts = 0;
      const restartSeen = async (timeoutMs: number) => {
        for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(5)) {
          const now = walSalt1(`${db}-wal`);
          if (now !== salt) {
            salt = now;
            restarts++;
            return true;
          }
        }
        return false;
      };
      await sleep(3000);
      assert.ok(await restartSeen(10_000), "walsync must checkpoint (the WAL restarts) before the outage");
      await sleep(1500);
      proxy.settings.down = true;
      proxy.cutAll();
      const outageStart = Date.now();
      await sleep(15_000);
      proxy.settings.down = false;
      console.log(`outage lasted ${((Date.now() - outageStart) / 1000).toFixed(1)} s`);
      assert.ok(await restartSeen(15_000), "walsync must checkpoint again after the outage");
      const result = await app;
      const summary = JSON.parse(new TextDecoder().decode(result.stdout));
      console.log(`application: ${JSON.stringify(summary)}; WAL restarts seen: ${restarts}`);
      await sleep(2000);
      const { code, stderr } = await watch.stop("SIGINT");
      assert.equal(code, 0, stderr);
      assert.match(stderr, /is failing/, "the outage must have been seen");
      assert.equal(summary.failures, 0, `the application got errors: ${summary.errors.join("; ")}`);
      assert.doesNotMatch(stderr, /starting generation 2/);
      const out = `${await tempDir()}/restored.db`;
      const r = await walsync(["restore", "impatient", "-o", out, "-b", backend.url], { env: backend.env });
      assert.equal(r.code, 0, r.stderr);
      const rows = (await sqlite3(out, "SELECT count(*), max(id) FROM t")).trim();
      assert.equal(rows, `${summary.last}|${summary.last}`, "every commit must be in the latest restore");
      await assertLatestRestoreEquals(backend, "impatient", db);
    } finally {
      await proxy.close();
    }
  },
});

Deno.test({
  name:
    "[s3] killed right after a checkpoint, before the spooled remainder was uploaded: the next start begins a new generation",
  ...noSanitizers,
  fn: async () => {
    const backend = await freshBackend("s3");
    const dir = await tempDir();
    const db = `${dir}/spool.db`;
    await writer("fill", db, "20");
    const args = [
      db,
      "-b",
      backend.url,
      "--sync-interval",
      "0.2",
      "--checkpoint-frames",
      "20",
      "--lease-seconds",
      "2",
    ];
    const app = new Deno.Command("python3", { args: [WRITER, "steady", db, "14", "300"], stdout: "piped" })
      .output();
    const doomed = spawnWatch(["--verbose", ...args], {
      ...backend.env,
      WALSYNC_TEST_HOOK: "crash-after-checkpoint",
    });
    await doomed.waitFor(/crash-after-checkpoint/, 30_000);
    for (let i = 0; i < 500 && !doomed.exited(); i++) await sleep(10);
    const { signal, stderr: before } = await doomed.stop("SIGTERM"); // already gone if the hook fired
    assert.equal(signal, "SIGKILL", `the hook must have killed watch:\n${before}`);
    assert.match(before, /crash-after-checkpoint/);
    await sleep(2500); // the application keeps writing (the WAL restarts); the lease expires
    const watch = await startWatch(args, backend.env);
    const written = await app;
    assert.equal(written.code, 0);
    await sleep(1000);
    const { code, stderr } = await watch.stop("SIGINT");
    assert.equal(code, 0, stderr);
    assert.match(stderr, /starting generation 2: the WAL (was restarted|no longer holds)/);
    await assertLatestRestoreEquals(backend, "spool", db);
  },
});

/** An application reader: holds one read transaction (an old snapshot) until killed. */
const LONG_READER = `
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN")
db.execute("SELECT count(*) FROM t").fetchone()
print("reading", flush=True)
time.sleep(120)
`;

Deno.test({
  name:
    "[file] killed after a checkpoint that an application reader kept from completing (the WAL did not restart): the next start continues the generation",
  ...noSanitizers,
  fn: async () => {
    const backend = await freshBackend("file");
    const dir = await tempDir();
    const db = `${dir}/held.db`;
    await writer("fill", db, "20");
    // The reader pins an old snapshot: walsync's checkpoints cannot complete, so they never find
    // the WAL fully backfilled; after a few postponed rounds the barrier backfills what it can
    // itself (the bounded fallback), spools the remainder and is killed before uploading it.
    const reader = spawnLines("python3", ["-c", LONG_READER, db]);
    let watch: WatchProcess | undefined;
    try {
      await reader.waitForLine(/reading/);
      const args = [db, "-b", backend.url, "--sync-interval", "0.2", "--checkpoint-frames", "20"];
      const app = new Deno.Command("python3", { args: [WRITER, "steady", db, "10", "200"], stdout: "piped" })
        .output();
      const doomed = spawnWatch(["--verbose", ...args], { WALSYNC_TEST_HOOK: "crash-after-checkpoint" });
      await doomed.waitFor(/crash-after-checkpoint/, 30_000);
      for (let i = 0; i < 500 && !doomed.exited(); i++) await sleep(10);
      const { signal, stderr: before } = await doomed.stop("SIGTERM"); // already gone if the hook fired
      assert.equal(signal, "SIGKILL", `the hook must have killed watch:\n${before}`);
      assert.match(
        before,
        /checkpoint postponed/,
        "the checkpoint must have waited for a complete backfill first",
      );
      watch = await startWatch(args);
      assert.match(watch.stderr(), /continuing generation 1/);
      assert.equal((await app).code, 0);
    } finally {
      reader.child.kill("SIGKILL");
      await reader.done;
    }
    await sleep(1000);
    const { code, stderr } = await watch!.stop("SIGINT");
    assert.equal(code, 0, stderr);
    assert.doesNotMatch(stderr, /starting generation 2/);
    await assertLatestRestoreEquals(backend, "held", db);
  },
});

/**
 * An application's TRUNCATE checkpoint (short busy timeout) and one commit on the same connection,
 * which keeps the WAL index alive: the commit restarts the WAL with salt-1 + 1, as a clean restart
 * looks. Exits without closing (closing the last connection would delete the WAL).
 */
const TRUNCATE_THEN_WRITE = `
import os, sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=0.2)
print("|".join(map(str, db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone())), flush=True)
db.execute("INSERT INTO t(v) VALUES (randomblob(100))")
os._exit(0)
`;

Deno.test({
  name:
    "[file] the read transaction cannot be started again after a checkpoint: the next WAL restart is not taken as continuous, new generation with the reason",
  ...noSanitizers,
  fn: async () => {
    const backend = await freshBackend("file");
    const dir = await tempDir();
    const db = `${dir}/repin.db`;
    await writer("fill", db, "20");
    const watch = await startWatch(
      ["--verbose", db, "-b", backend.url, "--sync-interval", "0.2", "--checkpoint-frames", "20"],
      { WALSYNC_TEST_HOOK: "fail-repin" },
    );
    let fills = 0;
    for (; fills < 50 && !/test hook fail-repin/.test(watch.stderr()); fills++) {
      await writer("fill", db, "30");
      await sleep(300);
    }
    console.log(`the hook fired after ${fills} transaction(s)`);
    assert.match(watch.stderr(), /test hook fail-repin/, "the failure must have been injected");
    // With no read transaction held, an application checkpoint can reset the WAL; the next write
    // restarts it with salt-1 + 1, as a clean restart would look.
    // (Busy if walsync holds a read transaction again, as it does once it started a new generation.)
    await writer("fill", db, "10");
    const truncated = await mustRun("python3", ["-c", TRUNCATE_THEN_WRITE, db]);
    console.log(`application TRUNCATE checkpoint (busy, log, checkpointed): ${truncated.trim()}`);
    await writer("fill", db, "5");
    await sleep(1500);
    const { code, stderr } = await watch.stop("SIGINT");
    assert.equal(code, 0, stderr);
    assert.match(stderr, /starting generation 2: .*read transaction/);
    await assertLatestRestoreEquals(backend, "repin", db);
  },
});
