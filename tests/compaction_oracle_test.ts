/**
 * Compaction oracle (issue #10, docs/design.md §11.1): an independent writer runs random transactions
 * while `watch` replicates with short compaction levels (1 s, 3 s, 6 s) and a short fine history (15 s)
 * to RGW and to a local directory at once, and a one-shot `prune --retention 15s` races it half way
 * (the watcher's own retention, 90 s, keeps the rest for the checks). Every restore
 * inside the window is exactly one committed state, never one begun after T; in the fine history it
 * holds every commit a sync interval (plus slack) before T, in the coarse history every commit a sync
 * interval before the level-1 boundary at or before T; before the window it exits 3. Segments older
 * than the fine history are gone (compacted), verify passes, and the latest restore reads few objects.
 */
import assert from "node:assert/strict";
import {
  type Backend,
  filesEqual,
  freshBackend,
  keyTime,
  listJson,
  listObjects,
  mustRun,
  REPO,
  sqlite3,
  startWatch,
  tempDir,
  walsync,
} from "./helpers.ts";

const ORACLE = `${REPO}tests/fixtures/oracle_writer.py`;
const L1_MS = 1000;
const FINE_MS = 15_000;
// Wall-clock slack between a commit and the segment holding it (a snapshot upload delays the next
// segment on a loaded machine), as in the watch oracle; precision is checked exactly on the store's
// key times below.
const SLACK_MS = 5000;

interface Commit {
  db: string;
  seq: number;
  t: number;
  t0?: number;
  digest: string;
  rows: number;
}

async function digestOf(path: string): Promise<{ digest: string; rows: number; integrity: string }> {
  return JSON.parse(await mustRun("python3", [ORACLE, "digest", path]));
}

Deno.test("compaction: every retained time restores exactly (fine) or to its level boundary (coarse); verify 0", async () => {
  const dir = await tempDir();
  const dbs = [`${dir}/alpha.db`, `${dir}/beta.db`];
  const seed = String(1 + Math.floor(Math.random() * 1e9));
  console.log(`oracle seed ${seed}`);
  await mustRun("python3", [ORACLE, "run", `${dir}/log.jsonl`, "0.3", ...dbs], {
    env: { ORACLE_SEED: seed },
  });
  const backends = [await freshBackend("file"), await freshBackend("s3")];
  const args = [
    "--sync-interval",
    "200ms",
    "--snapshot-interval",
    "10s",
    "--compaction-levels",
    "1s,3s,6s",
    "--compaction-interval",
    "1s",
    "--fine-history",
    `${FINE_MS}ms`,
    "--retention",
    "90s",
    "--retention-check-interval",
    "3s",
  ];
  // One database per store: two watchers of one database would run each other's checkpoints.
  const watches = await Promise.all(
    backends.map((b, i) => startWatch([dbs[i], "-b", b.url, ...args], b.env)),
  );
  // Few multi-megabyte transactions: two watchers, snapshots every 10 s and compaction share 2 CPUs.
  // Half way, a one-shot prune (another process) races the running watchers and their compaction.
  const pruned = (async () => {
    await new Promise((r) => setTimeout(r, 25_000));
    return await Promise.all(
      backends.map((b) => walsync(["prune", "-b", b.url, "--retention", "15s", "--json"], { env: b.env })),
    );
  })();
  await mustRun("python3", [ORACLE, "run", `${dir}/log.jsonl`, "40", ...dbs], {
    env: { ORACLE_SEED: seed + "1", ORACLE_BIG: "0.001" },
  });
  for (const p of await pruned) assert.equal(p.code, 0, p.stderr);
  await new Promise((r) => setTimeout(r, 2500));
  for (const w of watches) {
    const { code, stderr } = await w.stop("SIGINT");
    assert.equal(code, 0, stderr);
    assert.match(stderr, /compaction built [1-9]\d* L1/, "compaction ran");
  }
  // Every compaction pass ran before now: segments younger than this are promised whole.
  const fineSince1 = Date.now() - FINE_MS;
  const log: Commit[] = (await Deno.readTextFile(`${dir}/log.jsonl`)).trim().split("\n").map((l) =>
    JSON.parse(l)
  );
  for (const db of dbs) await sqlite3(db, "PRAGMA wal_checkpoint(TRUNCATE)");
  for (const [i, backend] of backends.entries()) await checkStore(backend, 1, dir, dbs[i], log, fineSince1);

  // Phase 2: compaction keeps up. Started again on the same stores, no segment older than the fine
  // history (plus a pass interval and a level-1 window) is left soon after; then the same checks over
  // the history that is now compacted.
  const again = await Promise.all(backends.map((b, i) => startWatch([dbs[i], "-b", b.url, ...args], b.env)));
  const staleOn = async (b: Backend) =>
    (await listObjects(b)).filter((o) =>
      /\/wal\//.test(o.key) && keyTime(o.key) < Date.now() - FINE_MS - 4000
    )
      .length;
  let stale = [-1];
  for (let waited = 0; waited < 90_000 && stale.some((n) => n !== 0); waited += 1000) {
    await new Promise((r) => setTimeout(r, 1000));
    stale = await Promise.all(backends.map(staleOn));
  }
  for (const w of again) assert.equal((await w.stop("SIGINT")).code, 0);
  const fineSince2 = Date.now() - FINE_MS;
  assert.deepEqual(stale, [0, 0], `segments older than the fine history remain (file, s3): ${stale}`);
  for (const [i, backend] of backends.entries()) await checkStore(backend, 2, dir, dbs[i], log, fineSince2);
});

/**
 * Checks one store against the writer's log: verify 0, the latest restore equals the source (and
 * reads few objects), before the window exits 3, and sampled points in time are exact.
 */
async function checkStore(
  backend: Backend,
  phase: 1 | 2,
  dir: string,
  db: string,
  all: Commit[],
  fineSince: number,
) {
  const name = db.split("/").at(-1)!.replace(/\.db$/, "");
  const log = all.filter((c) => c.db === name);
  const label = `${backend.label} (phase ${phase})`;
  const objects = await listObjects(backend);
  const segments = objects.filter((o) => /\/wal\//.test(o.key)).map((o) => keyTime(o.key));
  const levels = [1, 2, 3].map((l) =>
    objects.filter((o) => new RegExp(`/pages/\\d{8}-${l}-`).test(o.key)).length
  );
  if (phase === 2) assert.ok(levels.every((n) => n > 0), `${label}: page sets at every level (${levels})`);
  const firstSegment = Math.min(...segments);
  const level1 = objects.filter((o) => /\/pages\/\d{8}-1-/.test(o.key)).map((o) => {
    const [first, end] = /-(\d{17})-(\d{17})\.pages$/.exec(o.key)!.slice(1).map(stampTime);
    return { first, end };
  });
  const level1Ends = level1.map((s) => s.end);
  // A set whose older segments are deleted and newer ones kept (a pass stopped half way through its
  // deletes): its kept segments cannot be replayed, so the fine history starts at its end.
  const partial = level1.find((s) => s.first < firstSegment && firstSegment <= s.end);
  const fineStart = partial ? partial.end : firstSegment;
  // The fine history is whole: no level-1 set reaching into it has lost a segment.
  const cut = level1.find((s) => s.end > fineSince && s.first < fineStart);
  if (cut) {
    assert.fail(
      `${label}: segments of a level-1 set reaching into the fine history (since ` +
        `${new Date(fineSince).toISOString()}) were deleted: set ${new Date(cut.first).toISOString()}..` +
        `${new Date(cut.end).toISOString()}, first stored segment ${new Date(firstSegment).toISOString()}`,
    );
  }

  const verified = await walsync(["verify", "-b", backend.url], { env: backend.env });
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);

  const out = `${dir}/${label}-latest.db`;
  const latest = await walsync(["restore", name, "-o", out, "-b", backend.url, "--json"], {
    env: backend.env,
  });
  assert.equal(latest.code, 0, latest.stderr);
  assert.ok(await filesEqual(out, db), `${label}: the latest restore equals the source`);
  const read = JSON.parse(latest.stdout);
  const sinceSnapshot = segments.filter((t) => t > keyTime(read.snapshot)).length;
  assert.ok(
    1 + read.pageSets + read.segments <= 30,
    `${label}: the latest restore read ${read.pageSets} page set(s) and ${read.segments} segment(s)`,
  );
  console.log(
    `${label}: latest restore: 1 snapshot + ${read.pageSets} page sets + ${read.segments} segments ` +
      `(${sinceSnapshot} segments stored after the snapshot; ${levels} page sets per level)`,
  );

  const listed = (await listJson(backend)).find((d) => d.name === name)!;
  const from = Date.parse(listed.restorableFrom!);
  const before = await walsync([
    "restore",
    name,
    "-o",
    `${dir}/${label}-before.db`,
    "-b",
    backend.url,
    "--point-in-time",
    new Date(from - 2000).toISOString(),
  ], { env: backend.env });
  assert.equal(before.code, 3, `${label}: a restore before the window exits 3: ${before.stderr}`);

  const last = log.at(-1)!.t;
  let coarse = 0;
  let usedPages = 0;
  const span = (a: number, b: number) => a + Math.random() * (b - a);
  // Phase 1 samples the fine history (and whatever is compacted already), phase 2 the compacted one.
  const fineFrom = Math.max(from + 200, Math.min(fineStart, last));
  const times = [
    ...Array.from({ length: phase === 1 ? 3 : 9 }, () => span(from + 200, fineFrom)),
    ...Array.from({ length: phase === 1 ? 8 : 2 }, () => span(fineFrom, last)),
    // Just after the start of the fine history, where a half-compacted window would show.
    ...Array.from({ length: phase === 1 ? 2 : 0 }, () => span(fineFrom, Math.min(fineFrom + 1500, last))),
    last, // the last commit: few objects from the snapshot before it
  ];
  for (const [i, t] of times.entries()) {
    const at = `${dir}/${label}-${i}.db`;
    const iso = new Date(t).toISOString();
    const r = await walsync([
      "restore",
      name,
      "-o",
      at,
      "-b",
      backend.url,
      "--point-in-time",
      iso,
      "--json",
    ], {
      env: backend.env,
    });
    assert.equal(r.code, 0, `${label} at ${iso}: ${r.stderr}`);
    const result = JSON.parse(r.stdout);
    usedPages += result.pageSets;
    if (i === times.length - 1) {
      console.log(
        `${label}: restore of the last commit: 1 snapshot + ${result.pageSets} page sets + ${result.segments} segments`,
      );
      assert.ok(1 + result.pageSets + result.segments <= 30, `${label}: few objects for the last commit`);
    }
    const got = await digestOf(at);
    assert.equal(got.integrity, "ok");
    const match = log.filter((c) => c.digest === got.digest && c.rows === got.rows);
    assert.ok(match.length > 0, `${label} at ${iso}: the restored state is no committed state`);
    // A VACUUM is a commit that leaves the content (digest, rows) as it was: several commits can match
    // one state. The restored state is the latest of them that began at or before T; there must be one.
    const inTime = match.filter((c) => (c.t0 ?? c.t) <= t + 100);
    assert.ok(
      inTime.length > 0,
      `${label} at ${iso}: restored commit #${match[0].seq} is from after T (COMMIT began ` +
        `${new Date(match[0].t0 ?? match[0].t).toISOString()}; ${t >= firstSegment ? "fine" : "coarse"} ` +
        `history; restore ${r.stdout.trim()})`,
    );
    const seq = Math.max(...inTime.map((c) => c.seq));
    // Where segments remain the history is fine; before them only page sets are left.
    const fine = t >= fineStart;
    // Precision on the store: the state is that of the last segment at or before T (fine), or at
    // least of the last level-1 set at or before T (coarse: at most one level-1 window before T).
    const reached = Date.parse(result.time);
    const due = Math.max(...(fine ? segments : level1Ends).filter((x) => x <= t), -1);
    assert.ok(
      reached <= t && reached >= due,
      `${label} at ${iso} (${fine ? "fine" : "coarse"}): restored up to ${result.time}, due ` +
        `${new Date(due).toISOString()}; restore ${r.stdout.trim()}; objects near T:\n` +
        objects.filter((o) => {
          const m = /(\d{17})\.(db|wal|pages)$/.exec(o.key);
          const time = m ? stampTime(m[1]) : NaN;
          return time >= t - 3000 && time <= t + 1000;
        }).map((o) => `  ${o.key} (${o.size} B)`).join("\n"),
    );
    const bound = fine ? t : Math.floor(t / L1_MS) * L1_MS;
    if (!fine) coarse++;
    const settled = log.filter((c) => c.t <= bound - SLACK_MS).at(-1);
    if (settled) {
      assert.ok(
        seq >= settled.seq,
        `${label} at ${iso} (${fine ? "fine" : "coarse"}): #${seq} is older than #${settled.seq}`,
      );
    }
    await Deno.remove(at);
  }
  if (phase === 1) assert.ok(times.length - coarse > 3, `${label}: the fine history was restored`);
  if (phase === 2) {
    assert.ok(coarse > 0 && usedPages > 0, `${label}: coarse history was restored from page sets`);
  }
}

/** The time (ms) of a key's 17-digit stamp, YYYYMMDDHHMMSSmmm (UTC). */
function stampTime(stamp: string): number {
  return Date.parse(stamp.replace(/^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d{3})$/, "$1-$2-$3T$4:$5:$6.$7Z"));
}
