/**
 * Damaged page sets (docs/design.md §11.1): a restore whose path reads a damaged page set says so and
 * restores the same state through the sets or segments below it; `verify` reports the damage (exit 4).
 */
import assert from "node:assert/strict";
import {
  cleanup,
  filesEqual,
  flipByte,
  freshBackend,
  listObjects,
  mustRun,
  restore,
  sleep,
  sqlite3,
  startWatch,
  tempDir,
  walsync,
  WRITER,
} from "./helpers.ts";

Deno.test("compaction: a damaged level-2/3 page set is avoided (same state, from the sets below); verify exits 4", async () => {
  const dir = await tempDir();
  const db = `${dir}/d.db`;
  await mustRun("python3", [WRITER, "mixed", db, "0.2", "30"]);
  const backend = await freshBackend("file");
  const watch = await startWatch([
    db,
    "-b",
    backend.url,
    "--sync-interval",
    "100ms",
    "--snapshot-interval",
    "10m",
    "--compaction-levels",
    "500ms,1s,2s",
    "--compaction-interval",
    "300ms",
    "--fine-history",
    "1s",
  ], backend.env);
  await mustRun("python3", [WRITER, "mixed", db, "6", "30"]);
  await sleep(3000);
  const stopped = await watch.stop("SIGINT");
  assert.equal(stopped.code, 0, stopped.stderr);
  await sqlite3(db, "PRAGMA wal_checkpoint(TRUNCATE)");

  const intact = await restore(backend, "d", `${dir}/intact.db`, "--json");
  assert.equal(intact.code, 0, intact.stderr);
  assert.ok(JSON.parse(intact.stdout).pageSets > 0, intact.stdout);

  const upper = (await listObjects(backend)).filter((o) => /\/pages\/\d{8}-[23]-/.test(o.key));
  assert.ok(upper.length > 0, "level-2 and level-3 sets exist");
  for (const o of upper) await flipByte(`${backend.dir}/${o.key}`, Math.floor(o.size / 2));

  const r = await restore(backend, "d", `${dir}/out.db`, "--json");
  assert.equal(r.code, 0, r.stderr);
  assert.ok(await filesEqual(`${dir}/out.db`, db), "the same state as the source, from the sets below");
  assert.match(r.stderr, /\.pages/, "the damaged page set is named");
  const verified = await walsync(["verify", "-b", backend.url], { env: backend.env });
  assert.equal(verified.code, 4, verified.stdout + verified.stderr);
  assert.match(verified.stdout, /DAMAGED .*\.pages/);
  await cleanup(backend, dir);
});
