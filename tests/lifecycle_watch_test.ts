/**
 * Background retention in `watch` (src/lifecycle/background.ts): with a short window and check
 * interval, a watcher under a real writer deletes its own old history while it runs, never what it
 * still appends to: the latest restore equals the source, points inside the window restore to states
 * the writer committed, and verify passes.
 */
import assert from "node:assert/strict";
import {
  cleanup,
  filesEqual,
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

Deno.test("watch --retention: old history goes in the background, the window and the latest state stay", async () => {
  const dir = await tempDir();
  const db = `${dir}/bg.db`;
  await mustRun("python3", [WRITER, "mixed", db, "0.3", "40"]);
  const backend = await freshBackend("file");
  const watch = await startWatch([
    db,
    "-b",
    backend.url,
    "--sync-interval",
    "300ms",
    "--snapshot-interval",
    "2s",
    "--retention",
    "6s",
    "--retention-check-interval",
    "2s",
  ], backend.env);
  const started = Date.now();
  const commits = new Map(
    (await mustRun("python3", [WRITER, "mixed", db, "20", "40"])).trim().split("\n")
      .map((l) => l.split(" ").map(Number) as [number, number]),
  );
  await sleep(3000);
  const stopped = await watch.stop("SIGINT");
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.match(
    stopped.stderr,
    /retention deleted [1-9]\d* object\(s\)/,
    "the background pass deleted something",
  );

  const objects = (await listObjects(backend)).filter((o) => /\/(snapshots|wal)\//.test(o.key));
  const oldest = Math.min(...objects.map((o) => keyTime(o.key)));
  assert.ok(
    oldest > started + 5000,
    `history older than the window is gone (oldest ${new Date(oldest).toISOString()})`,
  );

  await sqlite3(db, "PRAGMA wal_checkpoint(TRUNCATE)");
  const latest = await restore(backend, "bg", `${dir}/latest.db`);
  assert.equal(latest.code, 0, latest.stderr);
  assert.ok(await filesEqual(`${dir}/latest.db`, db), "the latest restore equals the source");

  const t = Date.now() - 4000;
  const at = await restore(backend, "bg", `${dir}/at.db`, "--point-in-time", new Date(t).toISOString());
  assert.equal(at.code, 0, at.stderr);
  const verdict = (await mustRun("python3", [WRITER, "check", `${dir}/at.db`])).trim();
  assert.match(verdict, /^ok \d+$/);
  assert.ok(
    (commits.get(Number(verdict.split(" ")[1])) ?? Infinity) <= t + 100,
    `${verdict}: committed by T`,
  );

  const early = await restore(
    backend,
    "bg",
    `${dir}/early.db`,
    "--point-in-time",
    new Date(started).toISOString(),
  );
  assert.equal(early.code, 3, early.stderr);
  const verified = await walsync(["verify", "-b", backend.url], { env: backend.env });
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);

  // The snapshot the mark keeps is what the window starts from: if it goes missing, that is damage.
  const mark = JSON.parse(await Deno.readTextFile(`${backend.dir}/bg/retention.json`));
  await Deno.remove(`${backend.dir}/${mark.snapshot}`);
  const damaged = await walsync(["verify", "-b", backend.url], { env: backend.env });
  assert.equal(damaged.code, 4, damaged.stdout + damaged.stderr);
  await cleanup(backend, dir);
});
