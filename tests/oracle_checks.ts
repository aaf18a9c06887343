/**
 * Checks shared by the oracle tests: the log the oracle writer (tests/fixtures/oracle_writer.py)
 * keeps of every commit, and the judgement of a point-in-time restore against it.
 */
import assert from "node:assert/strict";
import { mustRun, REPO, walsync } from "./helpers.ts";

export const ORACLE = `${REPO}tests/fixtures/oracle_writer.py`;

/** One logged commit of the oracle writer. */
export interface Commit {
  db: string;
  seq: number;
  t: number;
  /** Time just before COMMIT (absent for the starting state). */
  t0?: number;
  digest: string;
  rows: number;
}

/** Reads the writer's log (one JSON line per commit). */
export async function readCommitLog(path: string): Promise<Commit[]> {
  return (await Deno.readTextFile(path)).trim().split("\n").map((l) => JSON.parse(l));
}

/** The content digest, row count and integrity_check result of a database file. */
export async function digestOf(path: string): Promise<{ digest: string; rows: number; integrity: string }> {
  return JSON.parse(await mustRun("python3", [ORACLE, "digest", path]));
}

/**
 * Restores `name` at each of `times` (in increasing order) and asserts that each result is exactly one
 * logged committed state, never one begun after T, never older than the last commit `settledMs` before
 * T, and never earlier than the previous time's. A time before the first backup (exit 3) is skipped.
 */
export async function assertPointInTimeRestores(
  backend: { url: string; env: Record<string, string>; label: string },
  name: string,
  commits: Commit[],
  times: number[],
  dir: string,
  settledMs = 5000,
): Promise<number> {
  let previousSeq = -1;
  let checked = 0;
  for (const t of times) {
    const at = `${dir}/${backend.label}-${name}-${Math.round(t)}.db`;
    const iso = new Date(t).toISOString();
    const pr = await walsync(["restore", name, "-o", at, "-b", backend.url, "--point-in-time", iso], {
      env: backend.env,
    });
    if (pr.code === 3 && /before the first backup/.test(pr.stderr)) continue; // T before the first snapshot
    assert.equal(pr.code, 0, pr.stderr);
    const got = await digestOf(at);
    assert.equal(got.integrity, "ok");
    const match = commits.filter((c) => c.digest === got.digest && c.rows === got.rows);
    assert.ok(
      match.length > 0,
      `${backend.label} ${name} at ${iso}: the restored state is no committed state`,
    );
    // A transaction can leave the content as it was (a DELETE or UPDATE whose range is empty), so
    // one state can belong to several commits: the restore is right if any of them fits T. No
    // reader can see a state before its COMMIT started (t0; the starting state has none). After
    // COMMIT returns (t) is no bound: walsync may ship the frames while COMMIT is still syncing.
    const fits = match.filter((c) => (c.t0 ?? c.t) <= t + 100);
    assert.ok(
      fits.length > 0,
      `${backend.label} ${name} at ${iso}: restored commit #${
        match.map((c) => c.seq).join("/#")
      } is from after T`,
    );
    const seq = Math.max(...fits.map((c) => c.seq));
    const settled = commits.filter((c) => c.t <= t - settledMs).at(-1);
    if (settled) {
      assert.ok(
        seq >= settled.seq,
        `${backend.label} ${name} at ${iso}: #${seq} is older than #${settled.seq} (${settledMs} ms before T)`,
      );
    }
    assert.ok(seq >= previousSeq, "later points in time never restore earlier states");
    previousSeq = seq;
    checked++;
    await Deno.remove(at);
  }
  return checked;
}
