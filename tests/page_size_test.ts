/**
 * Every page size SQLite allows (512 … 65536) round-trips through watch (with walsync's checkpoints
 * and several WAL restarts), restore and verify. One watch process serves all eight databases.
 */
import assert from "node:assert/strict";
import {
  cleanup,
  filesEqual,
  freshBackend,
  listKeys,
  objectMetadata,
  restore,
  sqlite3,
  startWatch,
  tempDir,
  walsync,
  writer,
} from "./helpers.ts";

const PAGE_SIZES = [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536];

Deno.test("every page size 512..65536: watch across WAL restarts, then latest restore is byte-exact and verify passes", async () => {
  const backend = await freshBackend("file");
  const dir = await tempDir();
  const dbs = PAGE_SIZES.map((size) => `${dir}/p${size}.db`);
  for (const [i, db] of dbs.entries()) {
    await sqlite3(
      db,
      `PRAGMA page_size=${PAGE_SIZES[i]}; PRAGMA journal_mode=WAL; ` +
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB NOT NULL);",
    );
    await writer("fill", db, "5"); // something in the WAL before watch starts
  }
  const watch = await startWatch([
    ...dbs,
    "-b",
    backend.url,
    "--sync-interval",
    "0.1",
    "--checkpoint-frames",
    "4",
  ], backend.env);
  // The writer commits to the databases in random order; each WAL passes 4 frames many times, so
  // walsync checkpoints and the next commit restarts the WAL.
  const restarts = async (name: string) => {
    const keys = (await listKeys(backend)).filter((k) => k.startsWith(`${name}/wal/`) && k.endsWith(".wal"));
    const cycles = new Set<string>();
    for (const key of keys) cycles.add((await objectMetadata(backend, key))["wal-header"]);
    return cycles.size - 1;
  };
  for (let round = 0;; round++) {
    await writer("many", "2", ...dbs);
    const counts = await Promise.all(PAGE_SIZES.map((size) => restarts(`p${size}`)));
    if (counts.every((n) => n >= 2)) break;
    assert.ok(round < 10, `the WALs did not restart twice each: ${counts.join(", ")}\n${watch.stderr()}`);
  }
  const stopped = await watch.stop();
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.doesNotMatch(stopped.stderr, /WARN|ERROR|starting generation [^1]/, "no gap, no error");

  for (const [i, db] of dbs.entries()) {
    const name = `p${PAGE_SIZES[i]}`;
    const out = `${dir}/${name}.restored`;
    const r = await restore(backend, name, out);
    assert.equal(r.code, 0, `${name}: ${r.stderr}`);
    assert.match((await writer("check", out)).trim(), /^ok \d+$/);
    await sqlite3(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    assert.ok(
      await filesEqual(out, db),
      `${name}: the restore must equal the checkpointed source byte for byte`,
    );
  }
  const verified = await walsync(["verify", "-b", backend.url], { env: backend.env });
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);
  await cleanup(backend, dir);
});
