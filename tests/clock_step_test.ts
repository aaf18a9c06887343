/**
 * The system clock stepped back while `watch` runs (faked inside the walsync process with
 * WALSYNC_TEST_CLOCK_STEP; the writer's clock is untouched). Object times used to follow the wall
 * clock and, after a step back, pile up just after the last stamp until the clock caught up, so a
 * point-in-time restore inside that window returned the state of the moment of the step. Stamps now
 * keep the pace walsync observed (src/clock.ts): restores stay exact and recent after the step.
 */
import assert from "node:assert/strict";
import { filesEqual, freshBackend, mustRun, sqlite3, startWatch, tempDir, walsync } from "./helpers.ts";
import { assertPointInTimeRestores, ORACLE, readCommitLog } from "./oracle_checks.ts";

const STEP_AFTER_MS = 4000;
const WRITE_SECONDS = 12;

for (const kind of ["file", "s3"] as const) {
  Deno.test(`[${kind}] a clock step back during watch: point-in-time restores after it stay exact`, async () => {
    const dir = await tempDir();
    const db = `${dir}/clock.db`;
    const logPath = `${dir}/log.jsonl`;
    await mustRun("python3", [ORACLE, "run", logPath, "0.3", db]);
    const backend = await freshBackend(kind);
    const watch = await startWatch([db, "-b", backend.url, "--sync-interval", "1"], {
      ...backend.env,
      WALSYNC_TEST_CLOCK_STEP: `${STEP_AFTER_MS}:-3600000`, // back one hour, 4 s in
    });
    const stepAt = Date.now() + STEP_AFTER_MS;
    await mustRun("python3", [ORACLE, "run", logPath, String(WRITE_SECONDS), db], {
      env: { ORACLE_MIN_TXNS: "300" },
    });
    await new Promise((r) => setTimeout(r, 3000));
    const { code, stderr } = await watch.stop("SIGINT");
    assert.equal(code, 0, stderr);
    assert.doesNotMatch(stderr, /starting generation 2/, "a clock step is no gap");
    await sqlite3(db, "PRAGMA wal_checkpoint(TRUNCATE)");

    const out = `${dir}/latest.db`;
    const latest = await walsync(["restore", "clock", "-o", out, "-b", backend.url], { env: backend.env });
    assert.equal(latest.code, 0, latest.stderr);
    assert.ok(await filesEqual(out, db), "the latest restore equals the source");

    // Times after the step (the window where stamps used to pile up), each 1 s apart, and two before.
    const commits = await readCommitLog(logPath);
    const last = commits.at(-1)!.t;
    const times = [stepAt - 2500, stepAt - 1000];
    for (let t = stepAt + 1500; t < last - 500; t += 1000) times.push(t);
    // Settled: with --sync-interval 1 everything committed 3 s before T is stored by T.
    const checked = await assertPointInTimeRestores(backend, "clock", commits, times, dir, 3000);
    assert.ok(checked >= 6, `only ${checked} points in time could be checked`);

    const verify = await walsync(["verify", "-b", backend.url, "clock"], { env: backend.env });
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  });
}
