/**
 * `walsync watch` under faults (issue #3), against RGW and file://, with real processes:
 * - `watch` killed with kill -9 at random moments (mid-upload included) while a separate writer
 *   commits continuously, restarted several times: every restore is one committed state, the
 *   latest equals the source, no gap is crossed;
 * - a writer killed mid-transaction: its uncommitted (spilled) frames are never shipped;
 * - a WAL header change that is not a clean restart, or a replaced database file: a new generation,
 *   with the reason in the log; a restart with nothing changed continues the generation;
 * - a missing segment: restore refuses to cross the hole.
 */
import assert from "node:assert/strict";
import {
  cleanup,
  deleteObject,
  filesEqual,
  filesIn,
  freshBackend,
  keyTime,
  listJson,
  listObjects,
  restore,
  restoredState,
  s3Settings,
  sleep,
  spawnLines,
  spawnWatch,
  sqlite3,
  startS3Proxy,
  startWatch,
  tempDir,
  waitForState,
  walSalt1,
  type WatchProcess,
  WRITER,
  writer,
} from "./helpers.ts";

const LABELS = ["s3", "file"] as const;

/** Stops `watch` with SIGINT and asserts a clean exit; returns its stderr. */
async function stopClean(w: WatchProcess): Promise<string> {
  const { code, signal, stderr } = await w.stop("SIGINT");
  assert.equal(code, 0, `watch must exit 0 on SIGINT (exit code ${code}, signal ${signal}):\n${stderr}`);
  assert.match(stderr, /stopped: \d+ segment\(s\) shipped/);
  return stderr;
}

/** The generations `watch` started, with their reasons, from its log. */
function generationsStarted(stderr: string): { generation: number; reason: string }[] {
  return [...stderr.matchAll(/starting generation (\d+): (.*)/g)].map((m) => ({
    generation: Number(m[1]),
    reason: m[2],
  }));
}

/** Temporary upload files (file:// backend) under `dir`: an upload that was in flight. */
async function tempUploads(dir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (d: string) => {
    try {
      for await (const e of Deno.readDir(d)) {
        if (e.isDirectory) await walk(`${d}/${e.name}`);
        else if (e.name.includes(".tmp-")) found.push(`${d}/${e.name}`);
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  };
  await walk(dir);
  return found;
}

/** Kills `w` with SIGKILL as soon as a new temporary upload file appears under `dir`; false on timeout. */
async function killOnTempFile(w: WatchProcess, dir: string, timeoutMs: number): Promise<boolean> {
  const watcher = Deno.watchFs(dir, { recursive: true });
  const timer = setTimeout(() => watcher.close(), timeoutMs);
  try {
    for await (const event of watcher) {
      if (event.kind === "create" && event.paths.some((p) => p.includes(".tmp-"))) {
        w.child.kill("SIGKILL");
        return true;
      }
    }
    return false;
  } finally {
    clearTimeout(timer);
    try {
      watcher.close();
    } catch { /* closed by the timer */ }
  }
}

for (const label of LABELS) {
  Deno.test(`[${label}] watch killed with kill -9 at random moments and restarted: no gap crossed, latest restore exact`, async () => {
    const started = Date.now();
    const backend = await freshBackend(label);
    const dir = await tempDir();
    const db = `${dir}/crash.db`;
    await writer("fill", db, "4000");
    const WRITE_SECONDS = 15;
    const app = spawnLines("python3", [WRITER, "mixed", db, String(WRITE_SECONDS)]);
    await app.waitForLine(/^\d+ \d+$/);
    // S3: through a proxy that can kill watch at a chosen moment of a PUT.
    let trap: ((method: string, path: string, phase: "request" | "response") => boolean) | null = null;
    const proxy = backend.label === "s3"
      ? startS3Proxy(s3Settings().endpoint, {
        onRequest: (method, path) => trap?.(method, path, "request"),
        onResponse: (method, path) => trap?.(method, path, "response"),
      })
      : null;
    const args = [db, "-b", backend.url, "--sync-interval", "0.2", "--checkpoint-frames", "300"];
    if (proxy) args.push("--endpoint", proxy.endpoint);
    /** Kills `w` at the next PUT of a segment or snapshot: when it starts, or when the server has stored it. */
    const killOnPut = (w: WatchProcess, phase: "request" | "response", timeoutMs: number) =>
      new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          trap = null;
          resolve(false);
        }, timeoutMs);
        trap = (method, path, at) => {
          if (method !== "PUT" || at !== phase || !/\/(wal|snapshots)\//.test(path)) return false;
          w.child.kill("SIGKILL");
          trap = null;
          clearTimeout(timer);
          resolve(true);
          return true;
        };
      });
    const logs: string[] = [];
    let midUpload = 0;
    let round = 0;
    // Kill rounds while the writer runs; the last watch starts while it is still writing.
    while (Date.now() - started < (WRITE_SECONDS - 6) * 1000 || round < 4) {
      const leftBefore = backend.dir ? await tempUploads(backend.dir) : [];
      const w = spawnWatch(args, backend.env);
      let how: string;
      if (round % 3 === 0) {
        // Right after start-up decides: a new generation's snapshot upload is in flight.
        assert.ok(await w.waitFor(/starting generation \d+|continuing generation/, 30_000), w.stderr());
        const fresh = /starting generation/.test(w.stderr());
        await sleep(Math.random() * (fresh ? 60 : 400));
        how = fresh ? "during the snapshot of a new generation" : "soon after continuing";
      } else if (round % 3 === 1 && backend.dir) {
        // The moment an upload's temporary file appears (inotify), kill -9 at once.
        assert.ok(await w.waitFor(/watching \d+ database/, 30_000), w.stderr());
        const killed = await killOnTempFile(w, backend.dir, 3000);
        how = killed
          ? "the moment an upload's temporary file appeared"
          : "after 3 s without seeing an upload";
      } else if (round % 3 === 1) {
        // S3: the moment a PUT starts (the server gets a cut-off body), or once the server has
        // stored the object but before watch hears so.
        assert.ok(await w.waitFor(/watching \d+ database/, 30_000), w.stderr());
        const phase = round % 2 ? "request" : "response";
        if (await killOnPut(w, phase, 3000)) {
          midUpload++;
          how = phase === "request"
            ? "as a PUT started (it cut an upload off)"
            : "as the server answered a PUT";
        } else {
          how = "after 3 s without seeing a PUT";
        }
      } else {
        assert.ok(await w.waitFor(/watching \d+ database/, 30_000), w.stderr());
        await sleep(200 + Math.random() * 2300);
        how = "at a random moment";
      }
      const { code, stderr } = await w.stop("SIGKILL");
      assert.notEqual(code, 0, "watch was killed");
      logs.push(stderr);
      // file://: a temporary file left behind by this kill is an upload it cut off.
      if (backend.dir && (await tempUploads(backend.dir)).some((f) => !leftBefore.includes(f))) {
        midUpload++;
        how += " (it cut an upload off)";
      }
      const down = round % 2 ? 0 : Math.random() * 1000;
      console.log(`round ${round}: killed ${how}; restarted after ${Math.round(down)} ms`);
      round++;
      await sleep(down); // the writer goes on alone (and may checkpoint and reset the WAL)
    }
    const last = spawnWatch(args, backend.env);
    assert.ok(await last.waitFor(/watching \d+ database/, 30_000), last.stderr());
    const status = await app.done;
    assert.equal(status.code, 0, "the writer must finish cleanly");
    const committed = app.lines.map((l) => l.split(" ").map(Number));
    const finalK = committed.at(-1)![0];
    await sleep(1500);
    logs.push(await stopClean(last));
    proxy?.close();

    const reasons = logs.flatMap(generationsStarted);
    const listed = await listJson(backend);
    assert.equal(listed.length, 1);
    const generations = listed[0].generations;
    console.log(
      `${round} kills (${midUpload} during an upload), ${committed.length} commits, ` +
        `${generations.length} generation(s) in list --json: ${
          reasons.map((r) => `#${r.generation} ${r.reason}`).join("; ")
        }`,
    );
    assert.ok(midUpload >= 1, "at least one kill must have hit an upload in flight");
    assert.ok(generations.length >= 1);
    for (const g of generations) {
      assert.ok(g.snapshots >= 1, `generation ${g.generation} must begin with a snapshot`);
    }
    assert.equal(listed[0].generation, generations.at(-1)!.generation);
    // Every generation listed was announced in a log with its reason (none appears silently).
    for (const g of generations) {
      assert.ok(
        reasons.some((r) => r.generation === g.generation),
        `generation ${g.generation} was started without a log line`,
      );
    }

    // Latest: byte-for-byte the source after its checkpoint, and the writer's last commit.
    const out = `${dir}/latest.db`;
    assert.equal(await restoredState(backend, "crash", out), `ok ${finalK}`);
    await sqlite3(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    assert.ok(await filesEqual(out, db), "the latest restore must equal the checkpointed source");

    // Each generation's end and random points in time: one committed state each, never later than T,
    // never going back in time (restore never crosses a gap, and no gap was papered over).
    const first = Date.parse(generations[0].restorableFrom!);
    const end = Date.parse(generations.at(-1)!.restorableTo!);
    const times = [
      ...generations.map((g) => Date.parse(g.restorableTo!)),
      ...Array.from({ length: 2 }, () => first + Math.random() * (end - first)),
    ].sort((a, b) => a - b);
    let previous = 0;
    for (const t of times) {
      const at = `${dir}/at-${t}.db`;
      const verdict = await restoredState(backend, "crash", at, "--point-in-time", new Date(t).toISOString());
      const m = /^ok (\d+)$/.exec(verdict);
      assert.ok(m, `restore at ${new Date(t).toISOString()} is no committed state: ${verdict}`);
      const k = Number(m[1]);
      assert.ok(
        k >= previous,
        `restore at ${new Date(t).toISOString()} went back in time (${k} < ${previous})`,
      );
      const commit = committed.find(([id]) => id === k);
      assert.ok(k <= 4000 || commit, `state ${k} was never committed by the writer`);
      if (commit) {
        assert.ok(commit[1] <= t + 100, `state ${k} (committed at ${commit[1]}) is from after T=${t}`);
      }
      previous = k;
      await Deno.remove(at);
    }
    console.log(`took ${((Date.now() - started) / 1000).toFixed(1)} s`);
    await cleanup(dir, backend);
  });

  Deno.test(`[${label}] a writer killed with kill -9 mid-transaction: its spilled, uncommitted frames are never shipped`, async () => {
    const backend = await freshBackend(label);
    const dir = await tempDir();
    const db = `${dir}/spill.db`;
    await writer("fill", db, "2000");
    // Stored as is, so that stored bytes measure shipped frames (zstd would shrink them ~20x).
    const args = [db, "-b", backend.url, "--sync-interval", "0.2", "--compression", "none"];
    const w = await startWatch(args, backend.env);
    const walBefore = (await Deno.stat(`${db}-wal`)).size;
    const spill = spawnLines("python3", [WRITER, "spill", db, "40000"]);
    await spill.waitForLine(/^ready$/);
    const spilled = (await Deno.stat(`${db}-wal`)).size - walBefore;
    assert.ok(spilled > 30_000_000, `the open transaction must have spilled into the WAL (${spilled} bytes)`);
    await sleep(1500); // several sync rounds see the spilled frames
    spill.child.kill("SIGKILL");
    await spill.done;
    await sleep(600);

    const shippedBytes = (await listObjects(backend)).filter((o) => o.key.startsWith("spill/wal/"))
      .reduce((n, o) => n + o.size, 0);
    assert.ok(
      shippedBytes < 1_000_000,
      `no uncommitted frame may be shipped (${shippedBytes} bytes of segments stored)`,
    );
    assert.equal(
      await restoredState(backend, "spill", `${dir}/r1.db`),
      "ok 2000",
      "the last committed state",
    );

    // The next application overwrites the dead transaction's frames; walsync ships only its commit.
    await writer("fill", db, "100");
    await sleep(1000);
    const stderr = await stopClean(w);
    assert.deepEqual(generationsStarted(stderr).map((g) => g.generation), [1], "no gap: one generation");
    assert.equal(await restoredState(backend, "spill", `${dir}/r2.db`), "ok 2100");
    await sqlite3(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    assert.ok(await filesEqual(`${dir}/r2.db`, db), "the restore must equal the checkpointed source");
    await cleanup(dir, backend);
  });

  Deno.test(`[${label}] a WAL reset while watch was stopped (checkpoint + new writes): new generation, exact restore`, async () => {
    const backend = await freshBackend(label);
    const dir = await tempDir();
    const db = `${dir}/reset.db`;
    const args = [db, "-b", backend.url, "--sync-interval", "0.2"];
    await writer("fill", db, "500");
    let w = await startWatch(args, backend.env);
    await writer("fill", db, "100");
    await sleep(800);
    await stopClean(w);
    // While watch is stopped: a commit it never sees, then the WAL is checkpointed, reset and
    // restarted by the next commit exactly as SQLite restarts it (salt-1 + 1): it looks like a
    // clean restart, but 30 rows' frames went by unseen.
    await writer("fill", db, "30");
    const salt1 = walSalt1(`${db}-wal`)!;
    await writer("fill", db, "50", "TRUNCATE");
    assert.equal(
      walSalt1(`${db}-wal`),
      (salt1 + 1) >>> 0,
      "the WAL was restarted the way SQLite restarts it",
    );
    w = await startWatch(args, backend.env);
    await writer("fill", db, "20");
    await sleep(800);
    const stderr = await stopClean(w);
    const started = generationsStarted(stderr);
    assert.equal(started.length, 1, stderr);
    assert.equal(started[0].generation, 2);
    assert.match(started[0].reason, /WAL/, "the reason names the WAL");
    assert.doesNotMatch(stderr, /continuing generation/);
    const out = `${dir}/out.db`;
    assert.equal(await restoredState(backend, "reset", out), "ok 700");
    await sqlite3(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    assert.ok(await filesEqual(out, db), "the restore must equal the checkpointed source");
    // Generation 1 still restores its own last state (the 600 rows it saw).
    const g1 = (await listJson(backend))[0].generations[0];
    assert.equal(g1.generation, 1);
    assert.equal(
      await restoredState(backend, "reset", `${dir}/g1.db`, "--point-in-time", g1.restorableTo!),
      "ok 600",
    );
    await cleanup(dir, backend);
  });

  Deno.test(`[${label}] the -wal file deleted while the database is closed: new generation, exact restore`, async () => {
    const backend = await freshBackend(label);
    const dir = await tempDir();
    const db = `${dir}/gone.db`;
    const args = [db, "-b", backend.url, "--sync-interval", "0.2"];
    await writer("fill", db, "500");
    await sqlite3(db, "PRAGMA wal_checkpoint(TRUNCATE)"); // the CLI's close then removes the WAL
    let w = await startWatch(args, backend.env);
    await writer("fill", db, "100"); // only in the WAL
    await sleep(800);
    await stopClean(w);
    assert.equal(await restoredState(backend, "gone", `${dir}/before.db`), "ok 600");
    // The WAL (with 100 committed rows) is deleted while nothing has the database open: the
    // database goes back to 500 rows, and the backup must follow it, not paper over the loss.
    await Deno.remove(`${db}-wal`);
    await Deno.remove(`${db}-shm`);
    w = await startWatch(args, backend.env);
    assert.equal(
      await restoredState(backend, "gone", `${dir}/after.db`),
      "ok 500",
      "the backup follows the database",
    );
    await writer("fill", db, "40");
    await sleep(800);
    const stderr = await stopClean(w);
    const started = generationsStarted(stderr);
    assert.equal(started.length, 1, stderr);
    assert.equal(started[0].generation, 2);
    assert.match(started[0].reason, /WAL/);
    const out = `${dir}/out.db`;
    assert.equal(await restoredState(backend, "gone", out), "ok 540");
    await sqlite3(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    assert.ok(await filesEqual(out, db), "the restore must equal the checkpointed source");
    await cleanup(dir, backend);
  });

  Deno.test(`[${label}] the database file replaced while watch runs: new generation ("replaced"), exact restore`, async () => {
    const backend = await freshBackend(label);
    const dir = await tempDir();
    const db = `${dir}/main.db`;
    await writer("fill", db, "300");
    const w = await startWatch([db, "-b", backend.url, "--sync-interval", "0.2"], backend.env);
    await writer("fill", db, "50");
    await waitForState(backend, "main", `${dir}/r1.db`, "ok 350");
    // Another database (WAL mode, 700 rows, cleanly closed so it has no -wal) is moved over it.
    const other = `${dir}/other.db`;
    await writer("fill", other, "700");
    await sqlite3(other, "PRAGMA wal_checkpoint(TRUNCATE)");
    await Deno.remove(`${db}-wal`);
    await Deno.remove(`${db}-shm`);
    await Deno.rename(other, db);
    assert.ok(
      await w.waitFor(/starting generation 2: .*replaced/, 10_000),
      `no new generation logged:\n${w.stderr()}`,
    );
    const r2 = `${dir}/r2.db`;
    await waitForState(backend, "main", r2, "ok 700");
    assert.ok(await filesEqual(r2, db), "the restore must equal the new file");
    await writer("fill", db, "25"); // and it goes on replicating the new file
    await sleep(800);
    const stderr = await stopClean(w);
    assert.deepEqual(generationsStarted(stderr).map((g) => g.generation), [1, 2], stderr);
    const out = `${dir}/out.db`;
    assert.equal(await restoredState(backend, "main", out), "ok 725");
    await sqlite3(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    assert.ok(await filesEqual(out, db), "the restore must equal the checkpointed source");
    await cleanup(dir, backend);
  });

  Deno.test(`[${label}] restarting watch when nothing broke continuity continues the generation`, async () => {
    const backend = await freshBackend(label);
    const dir = await tempDir();
    const db = `${dir}/steady.db`;
    const args = [db, "-b", backend.url, "--sync-interval", "0.2"];
    await writer("fill", db, "400");
    let w = await startWatch(args, backend.env);
    await writer("fill", db, "30");
    await sleep(800);
    assert.match(await stopClean(w), /starting generation 1: /);
    const objects = (await listObjects(backend)).map((o) => o.key).filter((k) => !k.endsWith("state.json"));

    // Nothing changed: continue, upload nothing new.
    w = await startWatch(args, backend.env);
    await sleep(600);
    let stderr = await stopClean(w);
    assert.match(stderr, /continuing generation 1 at segment #1/);
    assert.doesNotMatch(stderr, /starting generation/);
    assert.deepEqual(
      (await listObjects(backend)).map((o) => o.key).filter((k) => !k.endsWith("state.json")),
      objects,
    );

    // Commits while it was stopped, in the same WAL cycle: continue and ship them.
    await writer("fill", db, "20");
    w = await startWatch(args, backend.env);
    await sleep(800);
    stderr = await stopClean(w);
    // The commits it missed are shipped (as segment #1) before it reports where it continues.
    assert.match(stderr, /continuing generation 1 at segment #2/);
    assert.doesNotMatch(stderr, /starting generation/);
    const listed = await listJson(backend);
    assert.equal(listed[0].generations.length, 1);
    assert.equal(listed[0].generations[0].snapshots, 1, "no new snapshot");
    assert.equal(listed[0].generations[0].segments, 2);
    const out = `${dir}/out.db`;
    assert.equal(await restoredState(backend, "steady", out), "ok 450");
    await sqlite3(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    assert.ok(await filesEqual(out, db), "the restore must equal the checkpointed source");
    await cleanup(dir, backend);
  });

  Deno.test(`[${label}] restore never crosses a missing segment: it stops with exit 4 naming the object`, async () => {
    const backend = await freshBackend(label);
    const dir = await tempDir();
    const db = `${dir}/holes.db`;
    await writer("fill", db, "100");
    const w = await startWatch(["-v", db, "-b", backend.url, "--sync-interval", "0.2"], backend.env);
    for (let i = 1; i <= 4; i++) {
      await writer("fill", db, "10");
      assert.ok(await w.waitForCount(/holes: segment /, i, 20_000), w.stderr()); // one segment each
    }
    await stopClean(w);
    const segments = (await listObjects(backend)).map((o) => o.key).filter((k) => k.startsWith("holes/wal/"))
      .sort();
    assert.equal(segments.length, 4, segments.join(", "));
    assert.equal(await restoredState(backend, "holes", `${dir}/full.db`), "ok 140");
    await deleteObject(backend, segments[1]);
    const outDir = await tempDir();
    const r = await restore(backend, "holes", `${outDir}/out.db`);
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /segment #1 .*is missing|does not continue the restore chain/);
    assert.ok(r.stderr.includes(segments[2]), `the error must name the object after the hole:\n${r.stderr}`);
    assert.deepEqual(await filesIn(outDir), [], "nothing may be written");
    // Before the hole, the history is intact.
    const t = new Date(keyTime(segments[0])).toISOString();
    assert.equal(await restoredState(backend, "holes", `${dir}/early.db`, "--point-in-time", t), "ok 110");
    await cleanup(dir, backend, outDir);
  });
}
