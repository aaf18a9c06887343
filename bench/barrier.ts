/**
 * How long walsync holds the application's write lock (the checkpoint/snapshot barrier), healthy
 * and during a store outage. Goal (issue #9): p99 ≤ 5 ms and max ≤ 50 ms in both.
 *
 * walsync's replica engine (src/watch/replica.ts, what `watch` runs) is driven in this process,
 * one sync round per second as `watch --sync-interval 1` does, against the S3 server through a
 * fault proxy (tests/fixtures/fault_proxy.ts), with a small checkpoint threshold so that a
 * checkpoint is due nearly every round, and a snapshot every 10 s. A separate Python process is
 * the application: BEGIN IMMEDIATE / INSERT / COMMIT every 5 ms with a 100 ms busy timeout; it
 * reports its failures (SQLITE_BUSY) and how long its BEGIN IMMEDIATE waited.
 *
 * Phases: "healthy" (the proxy forwards everything) and "outage" (5 s healthy, 15 s of refused
 * connections, then healthy again). Each prints the barrier count, p50, p99 and max (from
 * `replica.stats.barrierMs`), the checkpoints and snapshots done, and the application's view.
 *
 * usage: eval "$(scripts/rgw.sh env)"; scripts/deno.sh run -A bench/barrier.ts [SECONDS_PER_PHASE]
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { WATCH_DEFAULTS } from "../src/commands/watch.ts";
import { configureLog } from "../src/log.ts";
import { openStore } from "../src/storage/open.ts";
import { Replica } from "../src/watch/replica.ts";
import { startFaultProxy } from "../tests/fixtures/fault_proxy.ts";
import { removePrefix, s3SettingsFromEnv } from "./lib/s3.ts";

const APPLICATION = `
import json, sqlite3, sys, time
path, seconds = sys.argv[1], float(sys.argv[2])
db = sqlite3.connect(path, isolation_level=None, timeout=0.1)
i = db.execute("SELECT coalesce(max(id), 0) FROM t").fetchone()[0] + 1
waits, failures = [], 0
deadline = time.time() + seconds
while time.time() < deadline:
    t0 = time.perf_counter()
    try:
        db.execute("BEGIN IMMEDIATE")
        waits.append((time.perf_counter() - t0) * 1000)
        db.execute("INSERT INTO t VALUES (?, randomblob(300))", (i,))
        db.execute("COMMIT")
        i += 1
    except sqlite3.Error:
        failures += 1
        try:
            db.execute("ROLLBACK")
        except sqlite3.Error:
            pass
    time.sleep(0.005)
waits.sort()
print(json.dumps({"commits": len(waits), "failures": failures,
                  "waitP99": waits[int(len(waits) * 0.99)] if waits else 0, "waitMax": waits[-1] if waits else 0}))
`;

interface PhaseResult {
  phase: string;
  barriers: number;
  p50: number;
  p99: number;
  max: number;
  checkpoints: number;
  snapshots: number;
  slowest: number[];
  app: { commits: number; failures: number; waitP99: number; waitMax: number };
}

async function runPhase(phase: "healthy" | "outage", seconds: number): Promise<PhaseResult> {
  const s3 = s3SettingsFromEnv();
  const url = new URL(s3.endpoint);
  const proxy = startFaultProxy({ hostname: url.hostname, port: Number(url.port || 80) });
  const prefix = `bench-barrier${crypto.randomUUID().slice(0, 8)}`;
  const dir = await Deno.makeTempDir({ prefix: "walsync-bench-barrier-" });
  const db = `${dir}/app.db`;
  const setup = new DatabaseSync(db);
  setup.exec("PRAGMA journal_mode=WAL; CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB NOT NULL)");
  setup.close();
  const store = openStore(`s3://${s3.bucket}/${prefix}`, {
    endpoint: `http://127.0.0.1:${proxy.port}`,
    env: (name) => name === "WALSYNC_S3_TIMEOUT_MS" ? "2000" : Deno.env.get(name),
  });
  const replica = new Replica(db, "app", store, {
    ...WATCH_DEFAULTS,
    checkpointFrames: 100,
    snapshotIntervalMs: 10_000,
  });
  try {
    await replica.start();
    const app = new Deno.Command("python3", {
      args: ["-c", APPLICATION, db, String(seconds)],
      stdout: "piped",
    })
      .output();
    const started = Date.now();
    while (Date.now() - started < seconds * 1000) {
      const t = (Date.now() - started) / 1000;
      if (phase === "outage") {
        const down = t >= 5 && t < 20;
        if (down && !proxy.settings.down) proxy.cutAll();
        proxy.settings.down = down;
      }
      const round = Date.now();
      await replica.sync().catch(() => {}); // failures are retried by later rounds
      await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - round))));
    }
    proxy.settings.down = false;
    const result = JSON.parse(new TextDecoder().decode((await app).stdout));
    await replica.stop();
    const b = replica.stats.barrierMs;
    return {
      phase,
      barriers: b.count,
      p50: b.percentile(50),
      p99: b.percentile(99),
      max: b.max,
      checkpoints: replica.stats.checkpoints,
      snapshots: replica.stats.snapshots,
      slowest: b.values().sort((x, y) => y - x).slice(0, 5),
      app: result,
    };
  } finally {
    await proxy.close();
    await Deno.remove(dir, { recursive: true });
    await removePrefix(s3, prefix).catch(() => {});
  }
}

if (import.meta.main) {
  configureLog({ quiet: true });
  const seconds = Number(Deno.args[0] ?? 30);
  const rows = [await runPhase("healthy", seconds), await runPhase("outage", Math.max(seconds, 30))];
  console.log(
    "phase    barriers  p50 ms  p99 ms  max ms  checkpoints  snapshots  app commits  app BUSY  app wait p99/max ms",
  );
  for (const r of rows) {
    console.log(
      `${r.phase.padEnd(8)} ${String(r.barriers).padStart(8)} ${r.p50.toFixed(2).padStart(7)} ${
        r.p99.toFixed(2).padStart(7)
      } ${r.max.toFixed(2).padStart(7)} ${String(r.checkpoints).padStart(12)} ${
        String(r.snapshots).padStart(10)
      } ${String(r.app.commits).padStart(12)} ${String(r.app.failures).padStart(9)}  ${
        r.app.waitP99.toFixed(1)
      }/${r.app.waitMax.toFixed(1)}`,
    );
  }
  for (const r of rows) {
    console.log(`${r.phase}: slowest barriers (ms): ${r.slowest.map((v) => v.toFixed(2)).join(", ")}`);
  }
}
