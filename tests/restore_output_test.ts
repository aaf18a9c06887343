/**
 * restore's output: nothing of the database it replaces survives beside it (no stale -wal, -shm or
 * -journal that the next SQLite open would replay), nothing is touched without --force, and the
 * restored file gets the replaced file's permissions (or 0600), never the umask's 0644.
 */
import assert from "node:assert/strict";
import {
  cleanup,
  freshBackend,
  sha256File,
  spawnLines,
  tempDir,
  walsync,
  WRITER,
  writer,
} from "./helpers.ts";

/** An application holding `db` open after committing rows 1..`rows` into its WAL (no checkpoint). */
const LIVE_WRITER = `
import sqlite3, sys, time
sys.path.insert(0, sys.argv[3])
from writer import value
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA wal_autocheckpoint=0")
db.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v BLOB NOT NULL)")
db.execute("BEGIN")
for i in range(1, int(sys.argv[2]) + 1):
    db.execute("INSERT INTO t VALUES (?, ?)", (i, value(i)))
db.execute("COMMIT")
print("ready", flush=True)
time.sleep(600)
`;

/** SHA-256 of each of a database's files that exist (for "nothing was touched"). */
async function fingerprint(db: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const suffix of ["", "-wal", "-shm", "-journal"]) {
    try {
      out[suffix || "db"] = await sha256File(db + suffix);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  return out;
}

for (const label of ["s3", "file"] as const) {
  for (const how of ["killed", "live"] as const) {
    Deno.test(`[${label}] restore --force over a database with a ${how} writer's -wal and -shm leaves no old WAL`, async () => {
      const backend = await freshBackend(label);
      const dir = await tempDir();
      const source = `${dir}/src.db`;
      await writer("fill", source, "50");
      const snap = await walsync(["snapshot", source, "-b", backend.url], { env: backend.env });
      assert.equal(snap.code, 0, snap.stderr);

      // The database being replaced: 200 committed rows that live only in its -wal.
      const out = `${dir}/out.db`;
      let app: ReturnType<typeof spawnLines> | null = null;
      if (how === "killed") {
        await writer("fill", out, "200"); // exits without closing: -wal and -shm stay, like after kill -9
      } else {
        const fixtures = WRITER.replace(/\/writer\.py$/, "");
        app = spawnLines("python3", ["-c", LIVE_WRITER, out, "200", fixtures]);
        await app.waitForLine(/^ready$/);
      }
      try {
        assert.ok((await Deno.stat(`${out}-wal`)).size > 0, "the old database has a live WAL");
        await Deno.stat(`${out}-shm`);
        await Deno.writeTextFile(`${out}-journal`, "not a journal of the restored database");
        const before = await fingerprint(out);

        const refused = await walsync(["restore", "src", "-o", out, "-b", backend.url], { env: backend.env });
        assert.equal(refused.code, 6, refused.stderr);
        assert.match(refused.stderr, /already exists; use --force/);
        assert.deepEqual(await fingerprint(out), before, "without --force nothing is touched");

        const forced = await walsync(["restore", "src", "-o", out, "-b", backend.url, "--force"], {
          env: backend.env,
        });
        assert.equal(forced.code, 0, forced.stderr);
        for (const suffix of ["-wal", "-shm", "-journal"]) {
          await assert.rejects(Deno.stat(out + suffix), Deno.errors.NotFound, `${suffix} was removed`);
        }
        // A separate process opens it as an application would: the backup's rows, nothing of the old WAL.
        assert.equal((await writer("check", out)).trim(), "ok 50");
      } finally {
        if (app) {
          app.child.kill("SIGKILL");
          await app.done;
        }
      }
      await cleanup(backend, dir);
    });
  }

  Deno.test(`[${label}] restore refuses a leftover -wal even when the database file itself is gone`, async () => {
    const backend = await freshBackend(label);
    const dir = await tempDir();
    const source = `${dir}/src.db`;
    await writer("fill", source, "30");
    assert.equal((await walsync(["snapshot", source, "-b", backend.url], { env: backend.env })).code, 0);
    const out = `${dir}/out.db`;
    await writer("fill", out, "100");
    await Deno.remove(out); // -wal and -shm stay behind
    const before = await fingerprint(out);
    const refused = await walsync(["restore", "src", "-o", out, "-b", backend.url], { env: backend.env });
    assert.equal(refused.code, 6, refused.stderr);
    assert.match(refused.stderr, /out\.db-wal.*already exists/);
    assert.deepEqual(await fingerprint(out), before);
    await assert.rejects(Deno.stat(out), Deno.errors.NotFound);
    const forced = await walsync(["restore", "src", "-o", out, "-b", backend.url, "--force"], {
      env: backend.env,
    });
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal((await writer("check", out)).trim(), "ok 30");
    await cleanup(backend, dir);
  });
}

Deno.test("[file] the restored file keeps the replaced file's permissions, or gets 0600", async () => {
  const backend = await freshBackend("file");
  const dir = await tempDir();
  const source = `${dir}/src.db`;
  await writer("fill", source, "20");
  assert.equal((await walsync(["snapshot", source, "-b", backend.url], { env: backend.env })).code, 0);

  const fresh = `${dir}/fresh.db`;
  const made = await walsync(["restore", "src", "-o", fresh, "-b", backend.url], { env: backend.env });
  assert.equal(made.code, 0, made.stderr);
  assert.equal((await Deno.stat(fresh)).mode! & 0o777, 0o600);

  const shared = `${dir}/shared.db`;
  await Deno.writeTextFile(shared, "old");
  await Deno.chmod(shared, 0o640);
  const replaced = await walsync(["restore", "src", "-o", shared, "-b", backend.url, "--force"], {
    env: backend.env,
  });
  assert.equal(replaced.code, 0, replaced.stderr);
  assert.equal((await Deno.stat(shared)).mode! & 0o777, 0o640);
  assert.equal((await writer("check", shared)).trim(), "ok 20");
  await cleanup(backend, dir);
});

/** Root can mount a tiny tmpfs to fill up (the test machines run as root); others skip the test. */
const isRoot =
  new TextDecoder().decode(new Deno.Command("id", { args: ["-u"] }).outputSync().stdout).trim() === "0";

Deno.test({
  name: "[file] a full disk during restore: one-line error naming the file, exit 1, nothing left behind",
  ignore: !isRoot,
  fn: async () => {
    const backend = await freshBackend("file");
    const dir = await tempDir();
    const source = `${dir}/big.db`;
    await writer("fill", source, "400"); // ~300 KB: more than the 64 KB file system below
    assert.equal((await walsync(["snapshot", source, "-b", backend.url], { env: backend.env })).code, 0);
    const small = `${dir}/small`;
    await Deno.mkdir(small);
    const mount = await new Deno.Command("mount", { args: ["-t", "tmpfs", "-o", "size=64k", "tmpfs", small] })
      .output();
    assert.equal(mount.code, 0, new TextDecoder().decode(mount.stderr));
    try {
      const r = await walsync(["restore", "big", "-o", `${small}/out.db`, "-b", backend.url], {
        env: backend.env,
      });
      assert.equal(r.code, 1, r.stderr);
      assert.match(
        r.stderr,
        /ERROR cannot write .*small\/out\.db: no space left on device/,
      );
      assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
      assert.deepEqual([...Deno.readDirSync(small)], [], "nothing left behind");
    } finally {
      await new Deno.Command("umount", { args: [small] }).output();
    }
    await cleanup(backend, dir);
  },
});
