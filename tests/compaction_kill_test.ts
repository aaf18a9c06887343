/**
 * kill -9 of `watch` at random moments of compaction (issue #10, docs/design.md §11.1): a writer
 * commits all along while a watcher with tiny compaction levels (500 ms, 1 s, 2 s, a pass every
 * 300 ms) is killed again and again right after a compaction pass began. After every kill the store
 * restores a committed state, never one begun after T; after the next start and a clean stop,
 * `verify` exits 0, the latest restore equals the source and points in time are exact.
 */
import assert from "node:assert/strict";
import {
  type Backend,
  cleanup,
  filesEqual,
  freshBackend,
  listJson,
  mustRun,
  restore,
  sleep,
  spawnLines,
  spawnWatch,
  sqlite3,
  tempDir,
  walsync,
  WRITER,
} from "./helpers.ts";

const WATCH_ARGS = [
  "--sync-interval",
  "100ms",
  "--snapshot-interval",
  "4s",
  "--compaction-levels",
  "500ms,1s,2s",
  "--compaction-interval",
  "300ms",
  "--fine-history",
  "1s",
];

/** The writer's commits: state K → time just before its COMMIT. */
function commitsOf(lines: string[]): Map<number, number> {
  return new Map(
    lines.filter((l) => /^\d+ \d+$/.test(l)).map((l) => l.split(" ").map(Number) as [number, number]),
  );
}

/** Restores `name` at `t` (latest when null) and checks it is a committed state begun at or before `t`. */
async function checkRestore(
  backend: Backend,
  out: string,
  t: number | null,
  commits: () => Map<number, number>,
  what: string,
): Promise<number> {
  const extra = t === null ? [] : ["--point-in-time", new Date(t).toISOString()];
  const r = await restore(backend, "k", out, "--force", ...extra);
  assert.equal(r.code, 0, `${what}: ${r.stderr}`);
  const verdict = (await mustRun("python3", [WRITER, "check", out])).trim();
  assert.match(verdict, /^ok \d+$/, `${what}: ${verdict}`);
  const k = Number(verdict.split(" ")[1]);
  const began = commits().get(k);
  if (t !== null && began !== undefined) {
    assert.ok(began <= t + 100, `${what}: state ${k} began ${new Date(began).toISOString()}, after T`);
  }
  return k;
}

async function killRuns(label: "file" | "s3", runs: number): Promise<void> {
  const dir = await tempDir();
  const db = `${dir}/k.db`;
  await mustRun("python3", [WRITER, "mixed", db, "0.2", "30"]);
  const backend = await freshBackend(label);
  const writer = spawnLines("python3", [WRITER, "mixed", db, "600", "30"]);
  const commits = () => commitsOf(writer.lines);
  // The watchers' own temporary directory: a build killed half way must leave nothing in it.
  const scratch = await tempDir();
  const env = { ...backend.env, TMPDIR: scratch };
  let kills = 0;
  for (let i = 0; i < runs; i++) {
    const watch = spawnWatch([db, "-b", backend.url, ...WATCH_ARGS], env);
    const passes = watch.count(/compaction built/);
    // Wait for compaction to be under way (a pass built something), then kill at a random moment
    // of the passes that follow back to back.
    const busy = await watch.waitForCount(/compaction built/, passes + 1 + (i % 3), 30_000);
    await sleep(Math.random() * 700);
    const { signal, stderr } = await watch.stop("SIGKILL");
    assert.ok(busy, `run ${i}: compaction never ran: ${stderr.slice(-2000)}`);
    assert.equal(signal, "SIGKILL", `run ${i}: watch died by itself: ${stderr.slice(-2000)}`);
    kills++;
    const from = Date.parse((await listJson(backend)).find((d) => d.name === "k")!.restorableFrom!);
    const t = Math.max(from + 100, Date.now() - 1500 - Math.random() * 3000);
    await checkRestore(backend, `${dir}/pit.db`, t, commits, `${label} run ${i}, after the kill, at T`);
    await checkRestore(
      backend,
      `${dir}/latest.db`,
      null,
      commits,
      `${label} run ${i}, latest after the kill`,
    );
  }
  writer.child.kill("SIGTERM");
  await writer.done;
  const left = [...Deno.readDirSync(scratch)].map((e) => e.name);
  assert.deepEqual(left, [], `${label}: temporary files left by the killed builds`);
  // The next start finishes the work; a clean stop ships everything.
  const watch = spawnWatch([db, "-b", backend.url, ...WATCH_ARGS], backend.env);
  const passes = watch.count(/compaction built/);
  assert.ok(await watch.waitForCount(/compaction built/, passes + 1, 30_000), watch.stderr());
  await sleep(3000);
  const stopped = await watch.stop("SIGINT");
  assert.equal(stopped.code, 0, stopped.stderr);
  const verified = await walsync(["verify", "-b", backend.url], { env: backend.env });
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);

  await sqlite3(db, "PRAGMA wal_checkpoint(TRUNCATE)");
  const latest = await restore(backend, "k", `${dir}/final.db`);
  assert.equal(latest.code, 0, latest.stderr);
  assert.ok(await filesEqual(`${dir}/final.db`, db), `${label}: the latest restore equals the source`);
  const times = [...commits().values()];
  for (let i = 0; i < 6; i++) {
    const t = times[0] + Math.random() * (times.at(-1)! - times[0]);
    const k = await checkRestore(backend, `${dir}/pit.db`, t, commits, `${label} final, at T`);
    const settled = [...commits()].filter(([, began]) => began <= t - 5000).map(([state]) => state);
    if (settled.length) {
      assert.ok(k >= Math.max(...settled), `${label} at T: state ${k} misses a commit 5 s before T`);
    }
  }
  console.log(`${label}: ${kills} kill(s) during compaction; verify 0; restores exact`);
  await cleanup(backend, dir);
  await Deno.remove(scratch, { recursive: true });
}

Deno.test("compaction: kill -9 of watch at random moments of compaction (file://, 10 runs)", async () => {
  await killRuns("file", 10);
});

Deno.test("compaction: kill -9 of watch at random moments of compaction (RGW, 2 runs)", async () => {
  await killRuns("s3", 2);
});

Deno.test("compaction: a watch killed inside a page-set build leaves no temporary file; the next start finishes", async () => {
  const dir = await tempDir();
  const scratch = await tempDir(); // the watchers' TMPDIR
  const db = `${dir}/k.db`;
  await mustRun("python3", [WRITER, "mixed", db, "0.2", "30"]);
  const backend = await freshBackend("file");
  const writer = spawnLines("python3", [WRITER, "mixed", db, "4", "30"]);
  const env = { ...backend.env, TMPDIR: scratch };
  const killed = spawnWatch([db, "-b", backend.url, ...WATCH_ARGS], {
    ...env,
    WALSYNC_TEST_HOOK: "crash-in-build",
  });
  const deadline = Date.now() + 30_000;
  while (!killed.exited() && Date.now() < deadline) await sleep(50);
  const { signal, stderr } = await killed.stop("SIGKILL");
  assert.equal(signal, "SIGKILL", `the build hook killed watch: ${stderr.slice(-2000)}`);
  assert.doesNotMatch(stderr, /compaction built/, "killed in its first build");
  assert.deepEqual(
    [...Deno.readDirSync(scratch)].map((e) => e.name),
    [],
    "temporary files left by the build",
  );
  await writer.done;
  const watch = spawnWatch([db, "-b", backend.url, ...WATCH_ARGS], env);
  assert.ok(await watch.waitForCount(/compaction built/, 1, 30_000), watch.stderr());
  const stopped = await watch.stop("SIGINT");
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.deepEqual(
    [...Deno.readDirSync(scratch)].map((e) => e.name),
    [],
    "temporary files left after a clean stop",
  );
  const verified = await walsync(["verify", "-b", backend.url], { env: backend.env });
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);
  await sqlite3(db, "PRAGMA wal_checkpoint(TRUNCATE)");
  const latest = await restore(backend, "k", `${dir}/final.db`);
  assert.equal(latest.code, 0, latest.stderr);
  assert.ok(await filesEqual(`${dir}/final.db`, db), "the latest restore equals the source");
  await cleanup(backend, dir);
  await Deno.remove(scratch, { recursive: true });
});
