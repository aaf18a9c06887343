/**
 * Figure 4: replication lag — from a commit in a separate writer process to a segment holding it
 * being readable from the store — at 1, 10 and 100 databases, `--sync-interval 1`, under a steady
 * 2 commits/s per database.
 *
 * - One `walsync watch` process serves all N databases (made by bench/lib/make_dbs.py).
 * - One python3 writer (bench/lib/writer.py) commits to all of them on a fixed schedule; commit n
 *   of a database inserts the marker "WSMK<n>" and records the wall-clock time COMMIT returned.
 * - This process polls the store: one ListObjectsV2 with `start-after` per polled database every
 *   100 ms; each new segment is fetched and the newest marker in it says up to which commit the
 *   database is now readable. Lag of commit n = time the LIST first showed a segment holding it −
 *   commit time. To keep the polling load the same at every scale, at most 10 databases (evenly
 *   spread over walsync's sync order) are polled; the others are written to and replicated alike.
 *   Polling adds up to one round (~100 ms + LIST time) to each figure.
 * The RSS and CPU of `watch` are sampled meanwhile; the 100-database run also gives figure 5's
 * "100 busy databases".
 * @module
 */
import type { S3Client } from "@bradenmacdonald/s3-lite-client";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type BenchContext,
  type BenchModule,
  logFile,
  removeSub,
  retryOnce,
  s3Url,
  scratch,
} from "./lib/context.ts";
import {
  Child,
  cpuSeconds,
  type MemoryStatus,
  memoryStatus,
  nowMs,
  run,
  sleep,
  spawnWalsync,
} from "./lib/proc.ts";
import type { Row } from "./lib/report.ts";
import { newestMarkerInObject } from "./lib/markers.ts";
import { listAfter } from "./lib/s3.ts";
import { mean, median, percentile } from "./lib/stats.ts";

const MAKE_DBS = fileURLToPath(new URL("./lib/make_dbs.py", import.meta.url));
const WRITER = fileURLToPath(new URL("./lib/writer.py", import.meta.url));
const POLL_PERIOD_MS = 100;
const MAX_POLLED = 10;

/** Options of a busy scenario. */
export interface BusyOptions {
  /** Commits per second per database. */
  rate: number;
  durationS: number;
  /** Poll the store and compute lags (false: only run the load, e.g. for memory). */
  poll: boolean;
}

/** What one busy scenario measured. */
export interface BusyResult {
  databases: number;
  polled: number;
  commits: number;
  /** Lags in ms of every commit of the polled databases. */
  lagsMs: number[];
  /** Commits of polled databases never seen in the store. */
  missing: number;
  /** Mean duration of a poll round, ms. */
  pollRoundMs: number | null;
  /** Durations of walsync's sync rounds (first to last database), ms; empty for one database. */
  syncRoundsMs: number[];
  /** Memory samples of `watch` (every second, from 5 s after the writer started). */
  rss: MemoryStatus[];
  peakRssMB: number | null;
  cpuPercent: number;
  watchExitCode: number;
}

/** A polled database: where its segments are listed from and what was seen when. */
interface Polled {
  index: number;
  prefix: string;
  lastKey: string;
  seen: { at: number; upTo: number }[];
}

/** One poll of a database: list new segments, fetch each, note the newest commit it holds. */
async function pollOnce(client: S3Client, p: Polled): Promise<void> {
  const keys = await listAfter(client, p.prefix, p.lastKey);
  const at = nowMs();
  for (const key of keys) {
    const bytes = new Uint8Array(await (await client.getObject(key)).arrayBuffer());
    p.seen.push({ at, upTo: Math.max(newestMarkerInObject(bytes), p.seen.at(-1)?.upTo ?? 0) });
    p.lastKey = key;
  }
}

/**
 * How long walsync's sync rounds took, from the times in the segment keys: `watch` syncs the
 * databases in order, so a round runs from the first database's segment to the last one's.
 * Returns the duration of every round in which both shipped a segment, in ms.
 */
export function roundDurations(keys: string[], first: string, last: string): number[] {
  const times = (db: string) =>
    keys.filter((k) => k.includes(`/${db}/wal/`)).map((k) => parseKeyTime(k)).sort((a, b) => a - b);
  const starts = times(first);
  const ends = times(last);
  const durations: number[] = [];
  starts.forEach((start, i) => {
    const next = starts[i + 1] ?? Infinity;
    const end = ends.find((e) => e >= start && e < next);
    if (end !== undefined) durations.push(end - start);
  });
  return durations;
}

/** The time in a segment key (…-YYYYMMDDHHMMSSmmm.wal), ms since the epoch. */
function parseKeyTime(key: string): number {
  const m = /-(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{3})\.wal$/.exec(key);
  if (!m) return NaN;
  const [y, mo, d, h, mi, s, ms] = m.slice(1).map(Number);
  return Date.UTC(y, mo - 1, d, h, mi, s, ms);
}

/** Runs N busy databases under one `watch` for `durationS`; see the module comment. */
export async function busyScenario(ctx: BenchContext, n: number, options: BusyOptions): Promise<BusyResult> {
  const name = `lag-${n}`;
  const dir = await scratch(ctx, name);
  const dbs = (await run("python3", [MAKE_DBS, dir, String(n)])).trim().split("\n");
  const sub = name;
  const watch = spawnWalsync(
    name,
    ["watch", ...dbs, "-b", s3Url(ctx, sub), "--sync-interval", "1"],
    logFile(ctx, name),
  );
  let writer: Child | null = null;
  try {
    await watch.waitForLine(/watching \d+ database/, 300_000);
    const timesFile = join(dir, "times.json");
    writer = new Child(`${name}-writer`, "python3", [
      WRITER,
      "--rate",
      String(options.rate),
      "--duration",
      String(options.durationS),
      "--out",
      timesFile,
      ...dbs,
    ], logFile(ctx, `${name}-writer`));

    const polledCount = options.poll ? Math.min(MAX_POLLED, n) : 0;
    const polled: Polled[] = Array.from({ length: polledCount }, (_, k) => {
      const index = Math.floor(k * n / polledCount);
      const db = `db-${String(index).padStart(4, "0")}`;
      return { index, prefix: `${ctx.prefix}/${sub}/${db}/wal/`, lastKey: "", seen: [] };
    });
    const rounds: number[] = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const started = performance.now();
        await Promise.all(polled.map((p) => pollOnce(ctx.client, p)));
        rounds.push(performance.now() - started);
        await sleep(Math.max(0, POLL_PERIOD_MS - (performance.now() - started)));
      }
    })();

    const rss: MemoryStatus[] = [];
    const cpu0 = cpuSeconds(watch.pid);
    const t0 = performance.now();
    const sampler = setInterval(() => {
      const m = performance.now() - t0 > 5000 ? memoryStatus(watch.pid) : null;
      if (m) rss.push(m);
    }, 1000);
    const status = await writer.done;
    clearInterval(sampler);
    if (!watch.alive) throw new Error(`watch exited during the measurement (see ${watch.logFile})`);
    const cpu = (cpuSeconds(watch.pid) - cpu0) / ((performance.now() - t0) / 1000) * 100;
    if (status.code !== 0) throw new Error(`writer failed (see ${writer.logFile})`);
    const times = JSON.parse(await Deno.readTextFile(timesFile)).times as number[][];

    // Drain: wait until every polled database shows its last commit (at most 10 s).
    const deadline = performance.now() + 10_000;
    while (
      performance.now() < deadline && polled.some((p) => (p.seen.at(-1)?.upTo ?? 0) < times[p.index].length)
    ) {
      await sleep(100);
    }
    polling = false;
    await poller;
    const peak = memoryStatus(watch.pid)?.hwm ?? null;
    const watchExitCode = await watch.stop();
    const keys: string[] = [];
    if (n > 1) {
      for await (const o of ctx.client.listObjects({ prefix: `${ctx.prefix}/${sub}/` })) keys.push(o.key);
    }
    const last = `db-${String(n - 1).padStart(4, "0")}`;

    const lagsMs: number[] = [];
    let missing = 0;
    for (const p of polled) {
      times[p.index].forEach((t, i) => {
        const hit = p.seen.find((s) => s.upTo >= i + 1);
        if (hit) lagsMs.push(hit.at - t * 1000);
        else missing++;
      });
    }
    return {
      databases: n,
      polled: polledCount,
      commits: times.reduce((a, t) => a + t.length, 0),
      lagsMs,
      missing,
      pollRoundMs: mean(rounds),
      syncRoundsMs: n > 1 ? roundDurations(keys, "db-0000", last) : [],
      rss,
      peakRssMB: peak,
      cpuPercent: cpu,
      watchExitCode,
    };
  } finally {
    await writer?.stop("SIGKILL", 1000);
    await watch.stop("SIGKILL", 1000);
    await removeSub(ctx, sub);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

async function measure(ctx: BenchContext): Promise<Row[]> {
  const rate = 2;
  const durationS = ctx.quick ? 15 : 30;
  const rows: Row[] = [];
  const results: Record<string, unknown> = {};
  for (const n of [1, 10, 100]) {
    ctx.log(`lag: ${n} database(s), ${rate} commits/s each, ${durationS} s ...`);
    const r = await retryOnce(ctx, `lag ${n}`, () => busyScenario(ctx, n, { rate, durationS, poll: true }));
    const p50 = percentile(r.lagsMs, 50);
    const p99 = percentile(r.lagsMs, 99);
    const roundP50 = percentile(r.syncRoundsMs, 50);
    const roundMax = r.syncRoundsMs.length ? Math.max(...r.syncRoundsMs) : null;
    results[n] = {
      ...r,
      lagsMs: undefined,
      syncRoundsMs: undefined,
      syncRoundP50Ms: roundP50,
      syncRoundMaxMs: roundMax,
      p50,
      p99,
      max: Math.max(...r.lagsMs),
      steadyRssMB: median(r.rss.map((m) => m.rss)),
    };
    if (n === 100) ctx.shared.busy100 = r;
    rows.push({
      figure: "4",
      what: `lag commit → readable in S3, ${n} database(s) × ${rate} commits/s: p50 / **p99**` +
        ` (p50 ${
          p50 === null ? "-" : (p50 / 1000).toFixed(2)
        } s; ${r.lagsMs.length} commits of ${r.polled} polled` +
        ` db(s)${r.missing ? `, ${r.missing} never seen` : ""})`,
      value: p99 === null ? null : p99 / 1000,
      unit: "s",
      reference: { what: "sync interval", value: 1, unit: "s" },
      ratio: p99 === null ? null : p99 / 1000,
      goal: n === 100
        ? { text: "p99 ≤ 2 s at 100 databases", met: p99 === null ? null : p99 <= 2000 }
        : undefined,
      note: roundP50 === null
        ? undefined
        : `${n} databases: one sync round (first database's segment to the last ` +
          `one's) took ${(roundP50 / 1000).toFixed(2)} s (median), ${
            (roundMax! / 1000).toFixed(2)
          } s at most; ` +
          `watch used ${r.cpuPercent.toFixed(0)}% of a core.`,
    });
  }
  ctx.details.lag = {
    ratePerDatabase: rate,
    durationS,
    pollPeriodMs: POLL_PERIOD_MS,
    results,
  };
  return rows;
}

/** Figure 4: replication lag at 1, 10 and 100 databases. */
export const lagModule: BenchModule = { name: "lag", figures: ["4"], run: measure };
