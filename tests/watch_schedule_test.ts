/**
 * `watch` scheduling and lifecycle (issues #9, #13): every database on its own schedule, so a
 * locked, slow or failing one delays no other; starts retried; SIGTERM obeyed in every phase; a
 * vanished database watched for and backed up again when it reappears (or when a database switches
 * to WAL); the lease fences uploads and its release never touches a successor's lease; the exit
 * code says when a database ended in failure.
 */
import assert from "node:assert/strict";
import { startFaultProxy } from "./fixtures/fault_proxy.ts";
import {
  type Backend,
  cleanup,
  filesEqual,
  freshBackend,
  keyTime,
  listKeys,
  mustRun,
  restore,
  restoredState,
  s3Settings,
  sleep,
  spawnLines,
  spawnWatch,
  sqlite3,
  startWatch,
  tempDir,
  waitForState,
  type WatchProcess,
  WRITER,
  writer,
} from "./helpers.ts";
import { openStore } from "../src/storage/open.ts";
import { Lease, leaseKey } from "../src/watch/lease.ts";

const LABELS = ["s3", "file"] as const;
const noSanitizers = { sanitizeOps: false, sanitizeResources: false };

/**
 * Holds a database's write lock from a separate process until killed: a transaction left open
 * after BEGIN IMMEDIATE ("transaction"), or a connection in locking_mode=EXCLUSIVE after a write
 * ("exclusive"), as an application might.
 */
async function holdLock(db: string, how: "transaction" | "exclusive") {
  const script = how === "transaction"
    ? `db.execute("BEGIN IMMEDIATE")`
    : `db.execute("PRAGMA locking_mode=EXCLUSIVE"); db.execute("BEGIN IMMEDIATE"); ` +
      `db.execute("CREATE TABLE IF NOT EXISTS lockdummy(x)"); db.execute("COMMIT")`;
  const holder = spawnLines("python3", [
    "-c",
    `import sqlite3, sys, time\ndb = sqlite3.connect(sys.argv[1], isolation_level=None)\n${script}\n` +
    `print("locked", flush=True)\ntime.sleep(3600)`,
    db,
  ]);
  await holder.waitForLine(/^locked$/);
  return {
    async release() {
      try {
        holder.child.kill("SIGKILL");
      } catch { /* gone */ }
      await holder.done;
    },
  };
}

/**
 * Python: one more row in each database (argv[2:]), printing "path T" with T the time (ms) just
 * before the commit (walsync may see the commit before the application's call returns: SQLite
 * writes the frames, then fsyncs).
 */
const LAST_COMMIT = `
import os, sys, time
sys.path.insert(0, os.path.dirname(sys.argv[1]))
from writer import connect, next_id, value
for path in sys.argv[2:]:
    db = connect(path)
    i = next_id(db)
    before = int(time.time() * 1000)
    db.execute("INSERT INTO t VALUES (?, ?)", (i, value(i)))
    print(path, before, flush=True)
os._exit(0)  # no close: the WAL stays as it is
`;

/** Sends SIGTERM; returns the exit code, stderr and how long the exit took. */
async function terminate(w: WatchProcess) {
  const sent = Date.now();
  const result = await w.stop("SIGTERM");
  return { ...result, ms: Date.now() - sent };
}

function proxyTarget() {
  const url = new URL(s3Settings().endpoint);
  return { hostname: url.hostname, port: Number(url.port || 80) };
}

/** The newest segment time of every database, from the keys under `backend`. */
async function newestSegments(backend: Backend): Promise<Map<string, number>> {
  const newest = new Map<string, number>();
  for (const key of await listKeys(backend)) {
    if (!/\/wal\/\d{8}-\d{17}\.wal$/.test(key)) continue;
    const name = key.split("/")[0];
    newest.set(name, Math.max(newest.get(name) ?? 0, keyTime(key)));
  }
  return newest;
}

Deno.test({
  name:
    "[s3] one database write-locked (open transaction) and one in locking_mode=EXCLUSIVE delay none of 20 others",
  ...noSanitizers,
  fn: async () => {
    const backend = await freshBackend("s3");
    const dir = await tempDir();
    const others = Array.from({ length: 20 }, (_, i) => `${dir}/db${String(i).padStart(2, "0")}.db`);
    const locked = `${dir}/locked.db`;
    const exclusive = `${dir}/exclusive.db`;
    await mustRun("python3", [WRITER, "many", "0", locked, exclusive, ...others]);
    const holders = [await holdLock(locked, "transaction"), await holdLock(exclusive, "exclusive")];
    // The locked ones first: before, start-up was sequential and waited for them forever.
    const w = spawnWatch(["-v", locked, exclusive, ...others, "-b", backend.url, "--sync-interval", "0.5"], {
      ...backend.env,
      WALSYNC_LOCK_WAIT_MS: "1000",
    });
    try {
      assert.ok(await w.waitForCount(/db\d\d: starting generation 1/, 20, 60_000), w.stderr());
      await mustRun("python3", [WRITER, "many", "2", ...others]);
      // Then one last commit in each, noting when it was done.
      const committed = new Map<string, number>();
      for (
        const line of (await mustRun("python3", ["-c", LAST_COMMIT, WRITER, ...others])).trim().split("\n")
      ) {
        const [path, time] = line.split(" ");
        committed.set(path.slice(dir.length + 1, -3), Number(time));
      }
      const lags = new Map<string, number>();
      const deadline = Date.now() + 30_000;
      while (lags.size < others.length && Date.now() < deadline) {
        for (const [name, time] of await newestSegments(backend)) {
          const at = committed.get(name);
          if (at !== undefined && time >= at && !lags.has(name)) lags.set(name, time - at);
        }
        await sleep(100);
      }
      const sorted = [...lags.values()].sort((a, b) => a - b);
      console.log(
        `lag after the last commit, 20 databases: median ${sorted[10]} ms, max ${sorted.at(-1)} ms`,
      );
      const newest = await newestSegments(backend);
      const late = [...committed.keys()].filter((name) => !lags.has(name))
        .map((name) => `${name}: committed at ${committed.get(name)}, newest segment ${newest.get(name)}`);
      assert.deepEqual(late, [], `every other database ships while two are locked: ${w.stderr()}`);
      // Killed (after two more sync intervals), so nothing is shipped at exit: the backup must
      // already hold everything, which the restores below check.
      await sleep(1000);
      await w.stop("SIGKILL");
      assert.match(w.stderr(), /locked: could not start \(retrying with backoff\): .*stayed write-locked/);
      assert.match(w.stderr(), /exclusive: could not start \(retrying with backoff\): .*stayed write-locked/);
      for (const db of others) await sqlite3(db, "PRAGMA wal_checkpoint(TRUNCATE)");
      const queue = [...others];
      await Promise.all(Array.from({ length: 4 }, async () => {
        for (let db = queue.shift(); db; db = queue.shift()) {
          const name = db.slice(dir.length + 1, -3);
          const out = `${dir}/restored-${name}.db`;
          const r = await restore(backend, name, out);
          assert.equal(r.code, 0, r.stderr);
          assert.ok(await filesEqual(out, db), `${name}: the restore must equal the source`);
        }
      }));
    } finally {
      await w.stop("SIGKILL");
      for (const h of holders) await h.release();
    }
    await cleanup(dir, backend);
  },
});

for (const label of LABELS) {
  Deno.test({
    name:
      `[${label}] watch a.db b.db with a.db write-locked: b is backed up, SIGTERM is obeyed at once, a's lease is released`,
    ...noSanitizers,
    fn: async () => {
      const backend = await freshBackend(label);
      const dir = await tempDir();
      const a = `${dir}/a.db`;
      const b = `${dir}/b.db`;
      await writer("fill", a, "30");
      await writer("fill", b, "40");
      const holder = await holdLock(a, "transaction");
      // The default wait for the lock (10 s): SIGTERM must interrupt it.
      const w = spawnWatch([a, b, "-b", backend.url, "--sync-interval", "0.2"], backend.env);
      try {
        await writer("fill", b, "5");
        await waitForState(backend, "b", `${dir}/rb.db`, "ok 45", 30_000);
        // a cannot start while its write lock is held (its first snapshot needs walsync's barrier).
        assert.ok(!/a: snapshot /.test(w.stderr()), w.stderr());
        const { code, stderr, ms } = await terminate(w);
        console.log(`SIGTERM while a.db waits for its write lock: exit ${code} after ${ms} ms`);
        assert.ok(ms < 8_000, `SIGTERM must be obeyed within seconds (took ${ms} ms):\n${stderr}`);
        assert.equal(code, 1, `a was never replicated: exit 1\n${stderr}`);
        assert.match(stderr, /watch ended with errors: a \(/);
      } finally {
        await w.stop("SIGKILL");
        await holder.release();
      }
      // a's lease was given back on the way: a new watch takes a at once (no "already replicated").
      await writer("fill", a, "3");
      const again = await startWatch([a, "-b", backend.url, "--sync-interval", "0.2"], backend.env, 30_000);
      assert.match(again.stderr(), /a: starting generation 1/);
      const { code, stderr } = await again.stop("SIGTERM");
      assert.equal(code, 0, stderr);
      assert.equal(await restoredState(backend, "a", `${dir}/ra.db`), "ok 33");
      await cleanup(dir, backend);
    },
  });
}

Deno.test({
  name: "[s3] SIGTERM is obeyed within seconds while an upload hangs and while the store is down",
  ...noSanitizers,
  fn: async () => {
    for (const fault of ["hang", "down"] as const) {
      const proxy = startFaultProxy(proxyTarget());
      const backend = await freshBackend("s3");
      const dir = await tempDir();
      const db = `${dir}/app.db`;
      const other = `${dir}/other.db`;
      await writer("fill", db, "50");
      await writer("fill", other, "50");
      const w = await startWatch(
        [
          db,
          other,
          "-b",
          backend.url,
          "--sync-interval",
          "0.2",
          "--endpoint",
          `http://127.0.0.1:${proxy.port}`,
        ],
        { ...backend.env, WALSYNC_SHUTDOWN_GRACE_MS: "1500" },
      );
      try {
        if (fault === "hang") proxy.settings.hangProbability = 1;
        else {
          proxy.settings.down = true;
          proxy.cutAll();
        }
        await writer("fill", db, "5");
        await sleep(2000); // the upload is hanging, or failing and backing off
        const { code, stderr, ms } = await terminate(w);
        console.log(
          `SIGTERM while the store is ${fault === "hang" ? "hanging" : "down"}: exit ${code} after ${ms} ms`,
        );
        assert.ok(ms < 8_000, `SIGTERM must be obeyed within seconds (took ${ms} ms):\n${stderr}`);
        assert.equal(code, 1, `the last commit could not be shipped: exit 1\n${stderr}`);
      } finally {
        await w.stop("SIGKILL");
        await proxy.close();
      }
      await cleanup(dir, backend);
    }
  },
});

Deno.test({
  name: "[s3] a store failure during start is retried: the database is not dropped",
  ...noSanitizers,
  fn: async () => {
    const proxy = startFaultProxy(proxyTarget());
    const backend = await freshBackend("s3");
    const dir = await tempDir();
    const db = `${dir}/app.db`;
    await writer("fill", db, "60");
    proxy.settings.down = true;
    const w = spawnWatch(
      [db, "-b", backend.url, "--sync-interval", "0.2", "--endpoint", `http://127.0.0.1:${proxy.port}`],
      backend.env,
    );
    try {
      assert.ok(await w.waitFor(/app: could not start \(retrying with backoff\)/, 60_000), w.stderr());
      assert.ok(!w.exited(), `watch must keep running:\n${w.stderr()}`);
      proxy.settings.down = false;
      assert.ok(await w.waitFor(/app: starting generation 1/, 90_000), w.stderr());
      await writer("fill", db, "6");
      const { code, stderr } = await w.stop("SIGTERM");
      assert.equal(code, 0, stderr);
      assert.match(stderr, /app: replicating again/);
      assert.equal(await restoredState(backend, "app", `${dir}/r.db`), "ok 66");
    } finally {
      await w.stop("SIGKILL");
      await proxy.close();
    }
    await cleanup(dir, backend);
  },
});

for (const label of LABELS) {
  Deno.test(`[${label}] a database removed (rm app.db*) is watched for; recreated, it is a new generation that restores byte-exact`, async () => {
    const backend = await freshBackend(label);
    const dir = await tempDir();
    const db = `${dir}/app.db`;
    const keep = `${dir}/keep.db`;
    await writer("fill", db, "100");
    await writer("fill", keep, "10");
    const w = await startWatch([db, keep, "-b", backend.url, "--sync-interval", "0.2"], {
      ...backend.env,
      WALSYNC_REPORT_INTERVAL_MS: "400",
    });
    await writer("fill", db, "10");
    await waitForState(backend, "app", `${dir}/r1.db`, "ok 110");
    for (const suffix of ["", "-wal", "-shm"]) await Deno.remove(`${db}${suffix}`);
    // Reported when it happens, and again while it lasts.
    assert.ok(await w.waitForCount(/app: \S*app\.db disappeared/, 3, 20_000), w.stderr());
    await writer("fill", db, "20"); // a new database at the same path: rows 1..20
    assert.ok(
      await w.waitFor(/app: starting generation 2: the database was deleted and has appeared again/, 20_000),
      w.stderr(),
    );
    await writer("fill", db, "7");
    await waitForState(backend, "app", `${dir}/r2.db`, "ok 27");
    const { code, stderr } = await w.stop("SIGTERM");
    assert.equal(code, 0, `the database is replicated again at the end: exit 0\n${stderr}`);
    assert.match(stderr, /app: replicating again/);
    const out = `${dir}/r3.db`;
    assert.equal(await restoredState(backend, "app", out), "ok 27");
    await sqlite3(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    assert.ok(await filesEqual(out, db), "the recreated database restores byte for byte");
    await cleanup(dir, backend);
  });

  Deno.test(`[${label}] a database not in WAL mode at start is backed up once it switches to WAL`, async () => {
    const backend = await freshBackend(label);
    const dir = await tempDir();
    const db = `${dir}/late.db`;
    const good = `${dir}/good.db`;
    await writer("fill", good, "10");
    await sqlite3(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB NOT NULL)"); // rollback journal
    const w = await startWatch([db, good, "-b", backend.url, "--sync-interval", "0.2"], backend.env);
    assert.match(w.stderr(), /late: \S*late\.db is not in WAL mode/);
    await writer("fill", db, "25"); // the writer switches it to WAL
    assert.ok(await w.waitFor(/late: starting generation 1/, 20_000), w.stderr());
    await writer("fill", db, "5");
    await waitForState(backend, "late", `${dir}/r1.db`, "ok 30");
    const { code, stderr } = await w.stop("SIGTERM");
    assert.equal(code, 0, stderr);
    const out = `${dir}/r2.db`;
    assert.equal(await restoredState(backend, "late", out), "ok 30");
    await sqlite3(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    assert.ok(await filesEqual(out, db));
    await cleanup(dir, backend);
  });
}

Deno.test({
  name:
    "[s3] a watcher that cannot renew its lease stops uploading; a successor takes over; the old one never deletes the successor's lease and exits 1",
  ...noSanitizers,
  fn: async () => {
    const proxy = startFaultProxy(proxyTarget());
    const backend = await freshBackend("s3");
    const dir = await tempDir();
    const db = `${dir}/app.db`;
    await writer("fill", db, "50");
    const args = [db, "-b", backend.url, "--sync-interval", "0.2", "--lease-seconds", "3"];
    const old = await startWatch([...args, "--endpoint", `http://127.0.0.1:${proxy.port}`], backend.env);
    let successor: WatchProcess | null = null;
    try {
      proxy.settings.down = true;
      proxy.cutAll();
      assert.ok(
        await old.waitFor(/app: the lease could not be renewed in time: not uploading/, 20_000),
        old.stderr(),
      );
      await sleep(1500); // past the lease's expiry
      successor = await startWatch(args, backend.env, 30_000);
      await writer("fill", db, "8");
      await waitForState(backend, "app", `${dir}/r1.db`, "ok 58");
      proxy.settings.down = false; // the old one can reach the store again, and finds the lease taken
      assert.ok(await old.waitFor(/app: lost the lease of "app": \S+ holds it now/, 30_000), old.stderr());
      const stopped = await terminate(old);
      assert.equal(stopped.code, 1, `lost the lease: exit 1\n${stopped.stderr}`);
      // The successor's lease is untouched: it is still the holder and goes on replicating.
      const store = openStore(backend.url, { env: (n) => backend.env[n] ?? Deno.env.get(n) });
      const lease = JSON.parse(await new Response((await store.get(leaseKey("app"))).body).text());
      assert.equal(lease.pid, successor.child.pid, JSON.stringify(lease));
      assert.equal(lease.released, undefined);
      await writer("fill", db, "4");
      const { code, stderr } = await successor.stop("SIGTERM");
      assert.equal(code, 0, stderr);
      assert.doesNotMatch(stderr, /lease/i);
      const out = `${dir}/r2.db`;
      assert.equal(await restoredState(backend, "app", out), "ok 62");
      await sqlite3(db, "PRAGMA wal_checkpoint(TRUNCATE)");
      assert.ok(await filesEqual(out, db));
    } finally {
      await old.stop("SIGKILL");
      await successor?.stop("SIGKILL");
      await proxy.close();
    }
    await cleanup(dir, backend);
  },
});

for (const label of LABELS) {
  Deno.test(`[${label}] Lease.release marks only its own lease released; a released lease is free at once`, async () => {
    const backend = await freshBackend(label);
    const store = openStore(backend.url, { env: (n) => backend.env[n] ?? Deno.env.get(n) });
    const first = await Lease.acquire(store, "db", 50);
    await sleep(100); // expired
    const successor = await Lease.acquire(store, "db", 60_000);
    assert.equal(await first.release(), false, "the old holder must see that the lease is not its own");
    await successor.renew(); // still the successor's: its version is unchanged
    const current = JSON.parse(await new Response((await store.get(leaseKey("db"))).body).text());
    assert.equal(current.released, undefined);
    assert.equal(await successor.release(), true);
    // Released: the next watcher takes it without waiting for the expiry (60 s).
    const next = await Lease.acquire(store, "db", 60_000);
    assert.ok(next.canWrite());
    await next.release();
    await cleanup(backend);
  });
}

/**
 * Python: a transaction big enough to spill its pages into the WAL, left open ("ready K"); when
 * the file `<db>.commit` appears it commits and sets the WAL's mtime back to what it was before
 * the commit (as if the commit had landed in the same mtime tick), printing "committed SAME-SIZE".
 */
const SPILL_THEN_COMMIT = `
import os, sys, time
sys.path.insert(0, os.path.dirname(sys.argv[1]))
from writer import connect, next_id, value
path, rows = sys.argv[2], int(sys.argv[3])
wal = path + "-wal"
db = connect(path)
db.execute("PRAGMA cache_size=20")
start = next_id(db)
db.execute("BEGIN IMMEDIATE")
for i in range(start, start + rows):
    db.execute("INSERT INTO t VALUES (?, ?)", (i, value(i)))
print("ready", start + rows - 1, flush=True)
while not os.path.exists(path + ".commit"):
    time.sleep(0.01)
before = os.stat(wal)
db.execute("COMMIT")
after = os.stat(wal)
os.utime(wal, ns=(after.st_atime_ns, before.st_mtime_ns))
print("committed", before.st_size == after.st_size, flush=True)
time.sleep(3600)
`;

Deno.test({
  name:
    "[file] a commit written in place in the same mtime tick as the previous probe is shipped within an interval",
  ...noSanitizers,
  fn: async () => {
    const backend = await freshBackend("file");
    const dir = await tempDir();
    const db = `${dir}/tick.db`;
    await writer("fill", db, "4000"); // a WAL of a few MB
    // Checkpointed by the application, then restarted by its next commit: from now on the WAL
    // is rewritten in place, and a commit does not change its size.
    await writer("fill", db, "5", "PASSIVE");
    const w = await startWatch(["-v", db, "-b", backend.url, "--sync-interval", "0.2"], backend.env);
    let app: ReturnType<typeof spawnLines> | null = null;
    try {
      await writer("fill", db, "3");
      assert.ok(await w.waitForCount(/tick: segment /, 1, 20_000), w.stderr());
      app = spawnLines("python3", ["-c", SPILL_THEN_COMMIT, WRITER, db, "300"]);
      const last = Number((await app.waitForLine(/^ready \d+$/)).split(" ")[1]);
      await sleep(1000); // several probes see the spilled, uncommitted frames
      await Deno.writeTextFile(`${db}.commit`, "");
      assert.equal(
        await app.waitForLine(/^committed /),
        "committed True",
        "the commit must not grow the WAL",
      );
      await waitForState(backend, "tick", `${dir}/r.db`, `ok ${last}`, 15_000);
    } finally {
      app?.child.kill("SIGKILL");
      await app?.done;
      await w.stop("SIGKILL");
    }
    await cleanup(dir, backend);
  },
});

Deno.test("[file] with every file-system event lost, the backstop poll ships a commit within its period; an idle database stays healthy", async () => {
  const backend = await freshBackend("file");
  const dir = await tempDir();
  const db = `${dir}/app.db`;
  await writer("fill", db, "10");
  const w = await startWatch(
    [db, "-b", backend.url, "--sync-interval", "300ms", "--metrics-addr", ":0", "-v"],
    { ...backend.env, WALSYNC_TEST_HOOK: "drop-fs-events" },
  );
  try {
    const base = /metrics on (http:\/\/127\.0\.0\.1:\d+)\/metrics/.exec(w.stderr())?.[1];
    assert.ok(base, w.stderr());
    await sleep(1500); // the rounds after the first snapshot are over: the database is idle
    // Idle: looked at once per backstop period (5 to 6 intervals), healthy all along.
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) {
      const response = await fetch(`${base}/healthz`);
      await response.body?.cancel();
      statuses.push(response.status);
      await sleep(100);
    }
    assert.deepEqual(statuses.filter((s) => s !== 200), [], `healthz while idle: ${statuses}`);
    // No event comes; the backstop finds the commit (a full idle round would come only after 60 s).
    const shipped = w.count(/app: segment /);
    const committed = performance.now();
    await writer("fill", db, "5");
    assert.ok(await w.waitForCount(/app: segment /, shipped + 1, 10_000), w.stderr());
    console.log(`shipped by the backstop ${Math.round(performance.now() - committed)} ms after the commit`);
  } finally {
    assert.equal((await w.stop("SIGINT")).code, 0);
  }
  assert.equal(await restoredState(backend, "app", `${dir}/out.db`), "ok 15");
  await cleanup(dir, backend);
});
