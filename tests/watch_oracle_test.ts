/**
 * The oracle test (issue #3): an independent writer runs thousands of random transactions of
 * varied size on several databases, with SQLite's auto-checkpoint on and its own PASSIVE,
 * RESTART and TRUNCATE checkpoints, while `walsync watch` replicates them to RGW and to a local
 * directory at once (page sizes 4096, 1024 and 65536). Every restore must be exactly one recorded
 * committed state.
 */
import assert from "node:assert/strict";
import { filesEqual, freshBackend, mustRun, sqlite3, startWatch, tempDir, walsync } from "./helpers.ts";
import { assertPointInTimeRestores, ORACLE, readCommitLog } from "./oracle_checks.ts";

const DBS = ["alpha", "beta", "gamma"];
/** Page sizes other than SQLite's default (4096, alpha's): small pages make many frames, big ones few. */
const PAGE_SIZES = "beta=1024,gamma=65536";
const WRITE_SECONDS = 15;

Deno.test("watch: restores at any time equal exactly one committed state; latest equals the source", async () => {
  const dir = await tempDir();
  const paths = DBS.map((n) => `${dir}/${n}.db`);
  const seed = String(1 + Math.floor(Math.random() * 1e9));
  console.log(`oracle seed ${seed} (ORACLE_SEED=${seed} reproduces the writer's choices)`);
  // Create the databases (WAL mode) before watching.
  await mustRun("python3", [ORACLE, "run", `${dir}/log.jsonl`, "0.5", ...paths], {
    env: { ORACLE_SEED: seed, ORACLE_PAGE_SIZES: PAGE_SIZES },
  });
  for (const [name, size] of PAGE_SIZES.split(",").map((kv) => kv.split("="))) {
    assert.equal((await sqlite3(`${dir}/${name}.db`, "PRAGMA page_size")).trim(), size);
  }

  const backends = [await freshBackend("s3"), await freshBackend("file")];
  const watches = await Promise.all(
    backends.map((b) => startWatch([...paths, "-b", b.url, "--sync-interval", "1"], b.env)),
  );
  const written = Number(
    (await mustRun("python3", [ORACLE, "run", `${dir}/log.jsonl`, String(WRITE_SECONDS), ...paths], {
      env: { ORACLE_SEED: seed + "1", ORACLE_MIN_TXNS: "2000" },
    })).trim(),
  );
  assert.ok(written >= 2000, `the writer must run thousands of transactions (ran ${written})`);
  await new Promise((r) => setTimeout(r, 3000));
  for (const w of watches) {
    const { code, stderr } = await w.stop("SIGINT");
    assert.equal(code, 0, stderr);
    assert.doesNotMatch(stderr, /starting generation [2-9]/, "no new generation may be started");
  }

  const log = await readCommitLog(`${dir}/log.jsonl`);
  for (const path of paths) await sqlite3(path, "PRAGMA wal_checkpoint(TRUNCATE)");

  for (const backend of backends) {
    const listed = JSON.parse(
      (await walsync(["list", "-b", backend.url, "--json"], { env: backend.env })).stdout,
    );
    for (const db of listed) {
      assert.equal(db.generations.length, 1, `${backend.label} ${db.name}: one generation only`);
    }

    for (const name of DBS) {
      const commits = log.filter((c) => c.db === name);
      // Latest: byte-for-byte equal to the checkpointed source.
      const out = `${dir}/${backend.label}-${name}-latest.db`;
      const r = await walsync(["restore", name, "-o", out, "-b", backend.url], { env: backend.env });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(
        await filesEqual(out, `${dir}/${name}.db`),
        `${backend.label} ${name}: latest restore must equal the source`,
      );

      // Points in time: each restore is exactly one committed state, never one later than T.
      const first = commits[0].t;
      const last = commits.at(-1)!.t;
      const times = Array.from(
        { length: 5 },
        (_, i) => first + ((i + 0.5 + Math.random() * 0.5) / 5) * (last - first),
      );
      await assertPointInTimeRestores(backend, name, commits, times, dir);
      await Deno.remove(out);
    }
  }
});
