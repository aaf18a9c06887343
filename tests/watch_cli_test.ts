/**
 * `walsync watch` as a command (issue #3), against RGW and file://: database names and `path:name`,
 * bad databases reported while the others keep syncing, exit codes, SIGTERM, no requests while
 * idle, many databases in one process, `--help`.
 */
import assert from "node:assert/strict";
import {
  cleanup,
  filesEqual,
  freshBackend,
  listKeys,
  mustRun,
  restore,
  restoredState,
  s3Settings,
  sleep,
  spawnWatch,
  sqlite3,
  startS3Proxy,
  startWatch,
  storeFingerprint,
  tempDir,
  waitForState,
  walsync,
  type WatchProcess,
  WRITER,
  writer,
} from "./helpers.ts";

const LABELS = ["s3", "file"] as const;

/** Runs `watch ARGS` that is expected to exit by itself; fails (after killing it) if it keeps running. */
async function watchExits(args: string[], env: Record<string, string>, timeoutMs = 30_000) {
  const w = spawnWatch(args, env);
  const deadline = Date.now() + timeoutMs;
  while (!w.exited() && Date.now() < deadline) await sleep(20);
  const running = !w.exited();
  const result = await w.stop("SIGKILL");
  assert.ok(!running, `watch should have exited by itself:\n${result.stderr}`);
  return result;
}

/** Stops `watch` with a signal and asserts exit code 0; returns its stderr. */
async function stopClean(w: WatchProcess, signal: Deno.Signal = "SIGINT"): Promise<string> {
  const { code, signal: killedBy, stderr } = await w.stop(signal);
  assert.equal(code, 0, `watch must exit 0 on ${signal} (exit code ${code}, signal ${killedBy}):\n${stderr}`);
  return stderr;
}

Deno.test("watch --help describes the command and its options, on stdout", async () => {
  const r = await walsync(["watch", "--help"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, "");
  assert.match(r.stdout, /^Usage: walsync watch \[options\] \[DB\.\.\.\]/);
  for (
    const option of [
      "-b, --backup <URL>",
      "--endpoint <URL>",
      "--sync-interval <SECS>",
      "--snapshot-interval <SECS>",
    ]
  ) {
    assert.ok(r.stdout.includes(option), `--help must mention ${option}`);
  }
  assert.match(r.stdout, /path\[:name\]/);
});

for (const label of LABELS) {
  Deno.test(`[${label}] two databases with one name are refused (exit 2) before anything is uploaded`, async () => {
    const backend = await freshBackend(label);
    const dir = await tempDir();
    await Deno.mkdir(`${dir}/a`);
    await Deno.mkdir(`${dir}/b`);
    for (const d of ["a", "b"]) await writer("fill", `${dir}/${d}/app.db`, "20");
    const cases: [string[], RegExp][] = [
      [[`${dir}/a/app.db`, `${dir}/b/app.db`], /would both be stored as "app"; give one an explicit name/],
      [[`${dir}/a/app.db:shared`, `${dir}/b/app.db:shared`], /would both be stored as "shared"/],
      [[`${dir}/a/app.db`, `${dir}/a/app.db`], /a\/app\.db is given twice/],
      [[`${dir}/a/app.db`, `${dir}/a/app.db:other`], /a\/app\.db is given twice/],
      [[`${dir}/a/app.db:-bad`], /invalid database name "-bad"/],
    ];
    for (const [dbs, message] of cases) {
      const { code, stderr } = await watchExits([...dbs, "-b", backend.url], backend.env);
      assert.equal(code, 2, stderr);
      assert.match(stderr, message);
      assert.doesNotMatch(stderr, /generation|snapshot/, "it must stop before touching any database");
    }
    assert.deepEqual(await listKeys(backend), [], "nothing may be uploaded");
    await cleanup(dir, backend);
  });

  Deno.test(`[${label}] path:name names a database; one file name in two directories is fine with a name`, async () => {
    const backend = await freshBackend(label);
    const dir = await tempDir();
    await Deno.mkdir(`${dir}/a`);
    await Deno.mkdir(`${dir}/b`);
    await writer("fill", `${dir}/a/app.db`, "100");
    await writer("fill", `${dir}/b/app.db`, "200");
    const w = await startWatch(
      [`${dir}/a/app.db`, `${dir}/b/app.db:app-b`, "-b", backend.url, "--sync-interval", "0.2"],
      backend.env,
    );
    await writer("fill", `${dir}/a/app.db`, "10");
    await writer("fill", `${dir}/b/app.db`, "20");
    await sleep(800);
    await stopClean(w);
    const names = [...new Set((await listKeys(backend)).map((k) => k.split("/")[0]))].sort();
    assert.deepEqual(names, ["app", "app-b"]);
    assert.equal(await restoredState(backend, "app", `${dir}/ra.db`), "ok 110");
    assert.equal(await restoredState(backend, "app-b", `${dir}/rb.db`), "ok 220");
    for (const [d, out] of [["a", "ra"], ["b", "rb"]]) {
      await sqlite3(`${dir}/${d}/app.db`, "PRAGMA wal_checkpoint(TRUNCATE)");
      assert.ok(await filesEqual(`${dir}/${out}.db`, `${dir}/${d}/app.db`));
    }
    await cleanup(dir, backend);
  });

  Deno.test(`[${label}] non-WAL, missing, non-SQLite and vanishing databases are reported; the others keep syncing`, async () => {
    const backend = await freshBackend(label);
    const dir = await tempDir();
    const good = `${dir}/good.db`;
    const doomed = `${dir}/doomed.db`;
    await writer("fill", good, "100");
    await writer("fill", doomed, "100");
    await sqlite3(`${dir}/journal.db`, "CREATE TABLE k(x); INSERT INTO k VALUES (1);"); // rollback journal
    await Deno.writeTextFile(
      `${dir}/notes.db`,
      "not a database, just text long enough for a header ".repeat(4),
    );
    const w = await startWatch(
      [
        good,
        `${dir}/journal.db`,
        `${dir}/missing.db`,
        `${dir}/notes.db`,
        doomed,
        "-b",
        backend.url,
        "--sync-interval",
        "0.2",
      ],
      backend.env,
    );
    const startup = w.stderr();
    assert.match(startup, /watching 2 database\(s\)/);
    assert.match(startup, /journal\.db is not in WAL mode.*sqlite3 \S*journal\.db "PRAGMA journal_mode=WAL"/);
    assert.match(startup, /missing\.db does not exist/);
    assert.match(startup, /notes\.db is not a SQLite database/);

    await writer("fill", good, "10");
    await waitForState(backend, "good", `${dir}/r1.db`, "ok 110");
    for (const suffix of ["", "-wal", "-shm"]) await Deno.remove(`${doomed}${suffix}`);
    assert.ok(
      await w.waitFor(
        /doomed: \S*doomed\.db disappeared; watching for a database to appear there again/,
        10_000,
      ),
      w.stderr(),
    );
    await writer("fill", good, "15"); // the other database goes on
    await sleep(800);
    // Databases that could not be replicated until the end make the exit code 1, each named.
    const { code, stderr } = await w.stop("SIGINT");
    assert.equal(code, 1, stderr);
    assert.match(stderr, /watch ended with errors: .*journal \(.*not in WAL mode/);
    for (const name of ["missing", "notes", "doomed"]) {
      assert.match(stderr, new RegExp(`ended with errors: .*${name} \\(`));
    }
    assert.doesNotMatch(stderr, /ended with errors: .*good \(/);
    assert.doesNotMatch(stderr, /good: stopped replicating/);
    assert.equal(await restoredState(backend, "good", `${dir}/r2.db`), "ok 125");
    assert.equal(await restoredState(backend, "doomed", `${dir}/r3.db`), "ok 100");
    const names = [...new Set((await listKeys(backend)).map((k) => k.split("/")[0]))].sort();
    assert.deepEqual(
      names,
      ["doomed", "good"],
      "nothing is stored for the databases that could not be watched",
    );
    await cleanup(dir, backend);
  });

  Deno.test(`[${label}] when no database can be watched, watch exits non-zero and uploads nothing`, async () => {
    const backend = await freshBackend(label);
    const dir = await tempDir();
    await sqlite3(`${dir}/journal.db`, "CREATE TABLE k(x);");
    const { code, stderr } = await watchExits(
      [`${dir}/journal.db`, `${dir}/missing.db`, "-b", backend.url],
      backend.env,
    );
    assert.notEqual(code, 0, stderr);
    assert.match(stderr, /PRAGMA journal_mode=WAL/);
    assert.match(stderr, /missing\.db does not exist/);
    assert.match(stderr, /no database could be watched/);
    assert.deepEqual(await listKeys(backend), []);
    await cleanup(dir, backend);
  });

  Deno.test(`[${label}] a second watch of the same name is refused while the first runs; after kill -9, a restart takes over at once`, async () => {
    const backend = await freshBackend(label);
    const dir = await tempDir();
    const db = `${dir}/solo.db`;
    await writer("fill", db, "100");
    const args = [db, "-b", backend.url, "--sync-interval", "0.2"];
    const first = await startWatch(args, backend.env);
    const second = await watchExits(args, backend.env);
    assert.equal(second.code, 7, second.stderr);
    assert.match(second.stderr, /"solo" is already being replicated .* refusing to start a second writer/);
    await writer("fill", db, "10");
    await waitForState(backend, "solo", `${dir}/r1.db`, "ok 110"); // the first one is undisturbed
    const killed = await first.stop("SIGKILL");
    assert.equal(killed.signal, "SIGKILL");
    // The holder is gone (same host): no need to wait for its lease (10 minutes by default) to expire.
    const restarted = await startWatch(args, backend.env, 20_000);
    assert.match(restarted.stderr(), /taking over the lease/);
    await writer("fill", db, "5");
    await stopClean(restarted);
    assert.equal(await restoredState(backend, "solo", `${dir}/r2.db`), "ok 115");
    await cleanup(dir, backend);
  });

  Deno.test(`[${label}] SIGTERM: exit 0, and the commit made just before the signal is in the backup`, async () => {
    const backend = await freshBackend(label);
    const dir = await tempDir();
    const db = `${dir}/term.db`;
    await writer("fill", db, "300");
    // A long sync interval: only the shutdown itself can ship the last commit.
    const w = await startWatch([db, "-b", backend.url, "--sync-interval", "60"], backend.env);
    await sleep(300);
    await writer("fill", db, "7");
    const signalled = Date.now();
    const stderr = await stopClean(w, "SIGTERM");
    assert.ok(Date.now() - signalled < 10_000, "SIGTERM must not wait for the next sync interval");
    assert.match(stderr, /SIGTERM received/);
    const out = `${dir}/out.db`;
    assert.equal(await restoredState(backend, "term", out), "ok 307");
    await sqlite3(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    assert.ok(await filesEqual(out, db));
    await cleanup(dir, backend);
  });

  Deno.test(`[${label}] an idle database costs no uploads and no requests`, async () => {
    const backend = await freshBackend(label);
    const dir = await tempDir();
    const busy = `${dir}/busy.db`;
    const quiet = `${dir}/quiet.db`;
    await writer("fill", busy, "500");
    await writer("fill", quiet, "50");
    // S3: count every request through a proxy.
    const requests: string[] = [];
    const proxy = label === "s3"
      ? startS3Proxy(s3Settings().endpoint, {
        onRequest: (method, path) => void requests.push(`${method} ${path}`),
      })
      : null;
    const args = [
      "-v",
      busy,
      quiet,
      "-b",
      backend.url,
      "--sync-interval",
      "0.2",
      "--checkpoint-frames",
      "200",
      // Compaction passes every half second: a pass over a database with nothing new costs nothing.
      "--compaction-levels",
      "1s,2s,4s",
      "--compaction-interval",
      "0.5s",
    ];
    if (proxy) args.push("--endpoint", proxy.endpoint);
    const w = await startWatch(args, backend.env);
    // Busy first: enough frames for walsync to checkpoint, and a WAL restart after it.
    await writer("fill", busy, "2000");
    assert.ok(await w.waitForCount(/busy: checkpoint: \d+ of \d+ frames backfilled/, 1, 20_000), w.stderr());
    const shipped = w.count(/busy: segment /);
    await writer("fill", busy, "10"); // restarts the WAL
    assert.ok(await w.waitForCount(/busy: segment /, shipped + 1, 20_000), w.stderr());
    await sleep(2000); // the passes after the last upload build what it closed, then nothing
    const before = await storeFingerprint(backend);
    const requestsBefore = requests.length;
    await sleep(4000); // idle
    const after = await storeFingerprint(backend);
    const idleRequests = requests.slice(requestsBefore);
    const stderr = await stopClean(w);
    proxy?.close();
    assert.equal(after, before, "nothing may be written while the databases are idle");
    if (proxy) {
      assert.ok(requestsBefore > 0, "the proxy must have seen the uploads");
      assert.deepEqual(idleRequests, [], "no S3 request at all while idle");
    }
    assert.equal(await restoredState(backend, "busy", `${dir}/busy-out.db`), "ok 2510");
    assert.equal(await restoredState(backend, "quiet", `${dir}/quiet-out.db`), "ok 50");
    assert.doesNotMatch(stderr, /starting generation 2/);
    await cleanup(dir, backend);
  });
}

Deno.test("20 databases in one watch process, replicated to RGW and file:// at once: every restore equals its source", async () => {
  const dir = await tempDir();
  await Deno.mkdir(`${dir}/x`);
  await Deno.mkdir(`${dir}/y`);
  // The same file names in two directories: the second set is named explicitly (path:name).
  const dbs = Array.from({ length: 20 }, (_, i) => {
    const n = `db${String(i % 10).padStart(2, "0")}`;
    return i < 10 ? { path: `${dir}/x/${n}.db`, name: n } : { path: `${dir}/y/${n}.db`, name: `y-${n}` };
  });
  /** Runs the writer (transactions of 1 to 50 rows, in random order) on `paths` for `seconds`. */
  const write = (seconds: number, paths: string[]) =>
    mustRun("python3", [WRITER, "many", String(seconds), ...paths]);
  await write(0.5, dbs.map((d) => d.path));
  const args = dbs.map((d) => (d.name.startsWith("y-") ? `${d.path}:${d.name}` : d.path));
  const backends = [await freshBackend("s3"), await freshBackend("file")];
  const watches = await Promise.all(
    backends.map((b) => startWatch([...args, "-b", b.url, "--sync-interval", "0.5"], b.env)),
  );
  for (const w of watches) assert.match(w.stderr(), /watching 20 database\(s\)/);
  // 15 of them busy, in random order, while 5 stay idle.
  await write(3, dbs.slice(0, 15).map((d) => d.path));
  await sleep(1000);
  for (const w of watches) {
    const stderr = await stopClean(w);
    assert.doesNotMatch(stderr, /starting generation [2-9]/, "no gap, no new generation");
    assert.doesNotMatch(stderr, /stopped replicating|ERROR/);
  }
  for (const d of dbs) await sqlite3(d.path, "PRAGMA wal_checkpoint(TRUNCATE)");
  for (const backend of backends) {
    const listed = JSON.parse(
      (await walsync(["list", "-b", backend.url, "--json"], { env: backend.env })).stdout,
    );
    assert.deepEqual(listed.map((l: { name: string }) => l.name).sort(), dbs.map((d) => d.name).sort());
    // Four restores at a time.
    const queue = [...dbs];
    await Promise.all(Array.from({ length: 4 }, async () => {
      for (let d = queue.shift(); d; d = queue.shift()) {
        const out = `${dir}/${backend.label}-${d.name}.db`;
        const r = await restore(backend, d.name, out);
        assert.equal(r.code, 0, `${backend.label} ${d.name}: ${r.stderr}`);
        assert.ok(
          await filesEqual(out, d.path),
          `${backend.label} ${d.name}: the restore must equal the source`,
        );
        await Deno.remove(out);
      }
    }));
  }
  await cleanup(dir, ...backends);
});
