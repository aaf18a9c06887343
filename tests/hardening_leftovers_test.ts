/**
 * Leftovers of interrupted uploads in a `file://` store (`<key>.tmp-*` after a kill -9 mid-upload):
 * reported by verify as warnings, removed at the next start of snapshot or watch; a temporary file
 * of an upload in progress in a live process is never removed.
 */
import assert from "node:assert/strict";
import {
  cleanup,
  freshBackend,
  listKeys,
  MAIN,
  sleep,
  sqlite3,
  startWatch,
  tempDir,
  walsync,
  writer,
} from "./helpers.ts";

const HOST = Deno.hostname().replace(/[^A-Za-z0-9.-]/g, "_");

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = new Deno.Command("true").spawn();
  await child.status;
  return child.pid;
}

Deno.test("file:// store: a snapshot killed mid-upload leaves a temp file; verify warns, the next snapshot/watch removes it, live uploads are kept", async () => {
  const backend = await freshBackend("file");
  const dir = await tempDir();
  const big = `${dir}/big.db`;
  await sqlite3(
    big,
    "PRAGMA journal_mode=WAL; CREATE TABLE b(x); WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c " +
      "WHERE i < 1500) INSERT INTO b SELECT randomblob(100000) FROM c;",
  ); // ~150 MB
  assert.equal((await walsync(["snapshot", big, "-b", backend.url])).code, 0);

  // kill -9 while the second snapshot is being written.
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, "snapshot", big, "-b", backend.url],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const temps = async () => (await listKeys(backend)).filter((k) => k.includes(".tmp-"));
  while ((await temps()).length === 0) {
    const done = await Promise.race([child.status.then(() => true), sleep(5).then(() => false)]);
    assert.ok(!done, "the snapshot finished before it could be killed");
  }
  child.kill("SIGKILL");
  await child.status;
  const killed = await temps();
  assert.equal(killed.length, 1, `one temp file of the killed upload: ${killed}`);
  assert.match(killed[0], new RegExp(`^big/snapshots/.*\\.db\\.tmp-${child.pid}-`));

  // Temp files of other writers: one of a live process (this test), fresh; an old-style one, fresh;
  // an old-style one two minutes old; one of a dead process, fresh.
  const live = `big/snapshots/00000009-20990101000000000.db.tmp-${Deno.pid}-${HOST}-0123abcd`;
  const fresh = "big/snapshots/00000009-20990101000000001.db.tmp-89abcdef";
  const old = "big/snapshots/00000009-20990101000000002.db.tmp-fedcba98";
  const dead = `app/wal/00000001-20990101000000000.wal.tmp-${await deadPid()}-${HOST}-00ff00ff`;
  for (const key of [live, fresh, old, dead]) {
    await Deno.mkdir(`${backend.dir}/${key.slice(0, key.lastIndexOf("/"))}`, { recursive: true });
    await Deno.writeTextFile(`${backend.dir}/${key}`, "partial");
  }
  const twoMinutesAgo = new Date(Date.now() - 120_000);
  await Deno.utime(`${backend.dir}/${old}`, twoMinutesAgo, twoMinutesAgo);

  const report = await walsync(["verify", "-b", backend.url, "--json"]);
  assert.equal(report.code, 0, "leftovers are warnings, not damage: " + report.stdout + report.stderr);
  const warned = JSON.parse(report.stdout).warnings.map((w: { key: string }) => w.key).sort();
  assert.deepEqual(warned, [...killed, old, dead].sort());
  const text = await walsync(["verify", "-b", backend.url, "big"]);
  assert.equal(text.code, 0);
  assert.match(
    text.stdout,
    new RegExp(`WARNING ${killed[0].replaceAll(".", "\\.")}: leftover of an interrupted upload`),
  );

  // The next snapshot removes the leftovers under its name; the live and the fresh ones stay.
  const again = await walsync(["snapshot", big, "-b", backend.url]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /big: removed 2 leftover\(s\) of interrupted uploads/);
  assert.deepEqual(await temps(), [dead, live, fresh].sort());

  // watch removes them at start too (under its lease).
  const app = `${dir}/app.db`;
  await writer("fill", app, "5");
  const watch = await startWatch([app, "-b", backend.url]);
  assert.match(watch.stderr(), /app: cleaned up 1 incomplete upload\(s\)/);
  assert.equal((await watch.stop()).code, 0);
  assert.deepEqual(await temps(), [live, fresh].sort(), "uploads that may be in progress are never removed");
  await cleanup(backend, dir);
});
