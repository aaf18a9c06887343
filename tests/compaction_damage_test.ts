/**
 * Damaged page sets (docs/design.md §11.1): a restore whose path reads a damaged page set says so and
 * restores the same state through the sets or segments below it; `verify` reports the damage (exit 4).
 * A full `verify` also proves mid-generation snapshots through compacted history: replayed through
 * the level-1 sets, a forged snapshot (or history that lost a commit) disagrees with its position.
 */
import assert from "node:assert/strict";
import {
  cleanup,
  filesEqual,
  flipByte,
  freshBackend,
  keyTime,
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
import { forgeSnapshot } from "./fixtures/forge.ts";

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

Deno.test("compaction: verify proves a mid-generation snapshot through level-1 sets; a forged one is damage", async () => {
  const dir = await tempDir();
  const db = `${dir}/p.db`;
  await mustRun("python3", [WRITER, "mixed", db, "0.2", "30"]);
  const backend = await freshBackend("file");
  const watch = await startWatch([
    db,
    "-b",
    backend.url,
    "--sync-interval",
    "100ms",
    "--snapshot-interval",
    "2s",
    "--compaction-levels",
    "500ms,1s",
    "--compaction-interval",
    "300ms",
    "--fine-history",
    "500ms",
  ], backend.env);
  await mustRun("python3", [WRITER, "mixed", db, "5", "30"]);
  await sleep(2500);
  const stopped = await watch.stop("SIGINT");
  assert.equal(stopped.code, 0, stopped.stderr);

  const objects = await listObjects(backend);
  const snapshots = objects.map((o) => o.key).filter((k) => /\/snapshots\/00000001-\d{17}\.db$/.test(k))
    .sort();
  assert.ok(snapshots.length >= 2, `mid-generation snapshots: ${snapshots}`);
  const target = snapshots[1];
  const [from, to] = [keyTime(snapshots[0]), keyTime(target)];
  const between = objects.filter((o) =>
    /\/wal\/.*\.wal$/.test(o.key) && keyTime(o.key) > from && keyTime(o.key) < to
  );
  assert.equal(between.length, 0, "the segments before the snapshot were compacted away");
  const ok = await walsync(["verify", "-b", backend.url], { env: backend.env });
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);

  await forgeSnapshot(backend, target, dir);
  const quick = await walsync(["verify", "-b", backend.url, "--quick"], { env: backend.env });
  assert.equal(quick.code, 0, "metadata alone cannot tell");
  const full = await walsync(["verify", "-b", backend.url, "--json"], { env: backend.env });
  assert.equal(full.code, 4, full.stdout + full.stderr);
  const damaged = JSON.parse(full.stdout).databases.flatMap((
    d: { damaged: { key: string; message: string }[] },
  ) => d.damaged);
  assert.deepEqual(damaged.map((d: { key: string }) => d.key), [target]);
  assert.match(damaged[0].message, /not the database at its position/);
  await cleanup(backend, dir);
});
