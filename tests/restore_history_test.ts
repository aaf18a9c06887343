/**
 * Planning a restore reads only what it needs: the snapshots, one seek per generation, and the
 * segments after the chosen snapshot (not the whole history), however long the history is. The store
 * is generated (bench/history.ts: real WAL frames, a snapshot after segment 1,990 of 2,000); the count
 * of listed keys comes from a store wrapper around the real FileStore; the restores run the real CLI.
 */
import assert from "node:assert/strict";
import { generate } from "../bench/history.ts";
import { readRestoreHistory } from "../src/log/restore_history.ts";
import { chooseRestore } from "../src/restore/plan.ts";
import { FileStore } from "../src/storage/file.ts";
import type { ListedObject, Store } from "../src/storage/store.ts";
import { cleanup, sqlite3, tempDir, walsync } from "./helpers.ts";

/** The FileStore, counting every key its listings yield. */
function counting(store: FileStore): { store: Store; listed: () => number } {
  let listed = 0;
  const wrapped = Object.create(store) as Store;
  wrapped.list = async function* (prefix: string, startAfter?: string): AsyncIterable<ListedObject> {
    for await (const entry of store.list(prefix, startAfter)) {
      listed++;
      yield entry;
    }
  };
  return { store: wrapped, listed: () => listed };
}

Deno.test("[file] restore planning lists the snapshots and the segments after the chosen one, not the history", async () => {
  const root = await tempDir();
  const dir = `${root}/store`;
  const t0 = Date.UTC(2026, 0, 1);
  generate(dir, 2000, t0, 1990);
  const { store, listed } = counting(new FileStore(dir));

  const latest = await readRestoreHistory(store, "hist");
  const choice = chooseRestore(latest!);
  assert.equal(choice.plans[0].snapshot.time, t0 + 9 + 2 * 1990, "the newest snapshot");
  assert.equal(choice.plans[0].time, t0 + 10 + 2 * 1999, "up to the last segment");
  assert.ok(listed() < 40, `a latest restore planned from ${listed()} listed keys (history: 2,002)`);

  const before = listed();
  const at = t0 + 10 + 2 * 100; // segment #100, long before the second snapshot
  const early = await readRestoreHistory(store, "hist", at);
  const plan = chooseRestore(early!, at).plans[0];
  assert.equal(plan.snapshot.time, t0);
  assert.equal(plan.time, at);
  assert.ok(listed() - before < 150, `a point-in-time plan from ${listed() - before} listed keys`);

  // The real restores agree: both states are the generated database (every frame rewrites page 1 as is).
  for (const extra of [[], ["--point-in-time", new Date(at).toISOString()]]) {
    const out = `${root}/out.db`;
    const r = await walsync([
      "restore",
      "hist",
      "-o",
      out,
      "-b",
      `file://${dir}`,
      "--force",
      "--json",
      ...extra,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout);
    assert.equal(result.segments, extra.length ? 101 : 10);
    assert.equal((await sqlite3(out, "PRAGMA integrity_check; SELECT x FROM t;")).trim(), "ok\n1");
  }
  const verify = await walsync(["verify", "-b", `file://${dir}`]);
  assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  await cleanup(root);
});
