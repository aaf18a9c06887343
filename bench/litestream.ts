/**
 * Figure 8 (issue #9): walsync side by side with Litestream 0.3.13 in the same run, on the same
 * RGW and the same databases: RSS and CPU at 1/10/100/1,000 idle and 1/10/100 busy databases,
 * lag commit → readable in S3 (p50/p99), and S3 requests per minute. `--quick`: 1/10/100 idle and
 * 1/10 busy. Litestream is installed into `.tools/litestream/` when missing (bench/lib/litestream.ts).
 *
 * Per row: N small WAL databases are made once (bench/lib/make_dbs.py); each tool gets its own
 * byte-identical copy of them (so neither sees the other's leftovers or commit markers), and the
 * tools run one at a time, walsync first: `walsync watch --sync-interval 1` (one process, all N) or
 * `litestream replicate` (one process, one `dbs:` entry per database, `sync-interval: 1s`). Both
 * talk to RGW through the same counting HTTP proxy (bench/lib/proxy.ts), which times and counts
 * every request. A tool is "ready" once every database has had one PUT (its initial snapshot);
 * then 40 s settle (past walsync's first background passes) and a 20 s window, in which VmRSS is
 * sampled every 0.5 s (steady = median; peak = VmHWM, start-up included), CPU = utime + stime over
 * the window, requests = everything the proxy
 * forwarded in the window (only one tool runs at a time), scaled to a minute.
 * Busy: one python3 writer (bench/lib/writer.py) commits 2 transactions/s to every database from
 * "ready" until the end of the window, each inserting the marker WSMK<n>. Lag of a commit in the
 * window = the time its first PUT completed at the proxy (a PUT answered 200 is readable) − the time
 * COMMIT returned in the writer. Which PUT holds commit n: after the run, the objects the proxy saw
 * PUT for up to 10 databases are read back from S3 and decoded (walsync: zstd or raw; Litestream:
 * LZ4), and the newest marker in each says up to which commit the database was then readable.
 * Same method for both tools, no polling load. The machine's 1-minute load average is recorded at
 * the start and end of each window.
 * @module
 */
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import {
  type BenchContext,
  type BenchModule,
  logFile,
  removeSub,
  retryOnce,
  s3Url,
  scratch,
} from "./lib/context.ts";
import { ensureLitestream, spawnLitestream } from "./lib/litestream.ts";
import { newestMarkerInObject } from "./lib/markers.ts";
import {
  Child,
  cpuSeconds,
  loadAverage,
  memoryStatus,
  nowMs,
  run,
  sampleRss,
  sleep,
  spawnWalsync,
} from "./lib/proc.ts";
import { countByOp, CountingProxy, type RequestEvent } from "./lib/proxy.ts";
import { num, ratio, type Row } from "./lib/report.ts";
import { median, percentile } from "./lib/stats.ts";

const MAKE_DBS = fileURLToPath(new URL("./lib/make_dbs.py", import.meta.url));
const WRITER = fileURLToPath(new URL("./lib/writer.py", import.meta.url));
/**
 * From ready to the window: past walsync's first background passes (retention at start, compaction 30 s
 * in, which list each database once), so that the idle rows show the steady state.
 */
const SETTLE_S = 40;
const WINDOW_S = 20;
const RATE = 2;
const MAX_LAG_DBS = 10;
const TOOLS = ["walsync", "litestream"] as const;
type Tool = typeof TOOLS[number];

/** What one tool measured in one row. */
export interface SideResult {
  tool: Tool;
  databases: number;
  busy: boolean;
  readyS: number;
  windowS: number;
  steadyMB: number | null;
  peakMB: number | null;
  cpuPercent: number;
  requestsPerMinute: number;
  byOp: Record<string, number>;
  lag: { p50Ms: number | null; p99Ms: number | null; commits: number; missing: number; dbs: number } | null;
  /** 1-minute load average at the start and end of the window. */
  load: [number, number];
  exitCode: number;
}

const dbName = (i: number) => `db-${String(i).padStart(4, "0")}`;

/** Waits until every database has had a PUT under `<keyPrefix><db>/` (its initial snapshot). */
async function waitForFirstPuts(proxy: CountingProxy, keyPrefix: string, n: number, child: Child) {
  const deadline = performance.now() + 900_000;
  const seen = new Set<string>();
  let scanned = 0;
  while (seen.size < n) {
    for (; scanned < proxy.events.length; scanned++) {
      const e = proxy.events[scanned];
      if (e.op === "PUT" && e.status === 200 && e.key.startsWith(keyPrefix)) {
        seen.add(e.key.slice(keyPrefix.length).split("/")[0]);
      }
    }
    if (!child.alive) throw new Error(`${child.name} exited before it was ready (see ${child.logFile})`);
    if (performance.now() > deadline) {
      throw new Error(`${child.name}: only ${seen.size} of ${n} databases stored`);
    }
    await sleep(200);
  }
}

/** Lags of the commits made in [from, to] of up to MAX_LAG_DBS databases; see the module comment. */
async function lags(
  ctx: BenchContext,
  events: RequestEvent[],
  keyPrefix: string,
  times: number[][],
  from: number,
  to: number,
) {
  const n = times.length;
  const count = Math.min(MAX_LAG_DBS, n);
  const lagsMs: number[] = [];
  let missing = 0;
  for (let k = 0; k < count; k++) {
    const index = Math.floor(k * n / count);
    const puts = events.filter((e) =>
      e.op === "PUT" && e.status === 200 && e.key.startsWith(`${keyPrefix}${dbName(index)}/`) &&
      !e.key.endsWith("lease.json")
    ).sort((a, b) => a.time - b.time);
    const seen: { at: number; upTo: number }[] = [];
    for (const e of puts) {
      let upTo = 0;
      try {
        upTo = newestMarkerInObject(new Uint8Array(await (await ctx.client.getObject(e.key)).arrayBuffer()));
      } catch { /* gone (e.g. compacted): holds nothing we can count */ }
      seen.push({ at: e.time, upTo: Math.max(upTo, seen.at(-1)?.upTo ?? 0) });
    }
    times[index].forEach((t, i) => {
      const committed = t * 1000;
      if (committed < from || committed > to) return;
      const hit = seen.find((s) => s.upTo >= i + 1);
      if (hit) lagsMs.push(hit.at - committed);
      else missing++;
    });
  }
  return {
    p50Ms: percentile(lagsMs, 50),
    p99Ms: percentile(lagsMs, 99),
    commits: lagsMs.length,
    missing,
    dbs: count,
  };
}

async function scenario(
  ctx: BenchContext,
  tool: Tool,
  litestream: string,
  template: string,
  n: number,
  busy: boolean,
  proxy: CountingProxy,
): Promise<SideResult> {
  const sub = `vs-${tool}-${busy ? "busy" : "idle"}-${n}`;
  const dir = await scratch(ctx, sub);
  await run("cp", ["-a", `${template}/.`, dir]);
  const dbs = Array.from({ length: n }, (_, i) => join(dir, `${dbName(i)}.db`));
  const keyPrefix = `${ctx.prefix}/${sub}/`;
  const started = performance.now();
  const child = tool === "walsync"
    ? spawnWalsync(sub, [
      "watch",
      ...dbs,
      "-b",
      s3Url(ctx, sub),
      "--endpoint",
      proxy.url,
      "--sync-interval",
      "1",
    ], logFile(ctx, sub))
    : await spawnLitestream(
      litestream,
      sub,
      dbs,
      {
        endpoint: proxy.url,
        bucket: ctx.s3.bucket,
        region: ctx.s3.region,
        prefix: `${ctx.prefix}/${sub}`,
      },
      dir,
      logFile(ctx, sub),
    );
  let writer: Child | null = null;
  try {
    await waitForFirstPuts(proxy, keyPrefix, n, child);
    const readyS = (performance.now() - started) / 1000;
    const timesFile = join(dir, "times.json");
    if (busy) {
      writer = new Child(`${sub}-writer`, "python3", [
        WRITER,
        "--rate",
        String(RATE),
        "--duration",
        String(SETTLE_S + WINDOW_S + 1),
        "--out",
        timesFile,
        ...dbs,
      ], logFile(ctx, `${sub}-writer`));
    }
    await sleep(SETTLE_S * 1000);
    const load0 = loadAverage()[0];
    const cpu0 = cpuSeconds(child.pid);
    const from = nowMs();
    const t0 = performance.now();
    const samples = await sampleRss(child.pid, WINDOW_S);
    const elapsed = (performance.now() - t0) / 1000;
    const cpuPercent = (cpuSeconds(child.pid) - cpu0) / elapsed * 100;
    const to = nowMs();
    const load1 = loadAverage()[0];
    const peakMB = memoryStatus(child.pid)?.hwm ?? null;
    if (!child.alive) throw new Error(`${sub} exited during the window (see ${child.logFile})`);
    const window = proxy.events.filter((e) => e.time >= from && e.time <= to);
    let lag: SideResult["lag"] = null;
    if (writer) {
      const status = await writer.done;
      if (status.code !== 0) throw new Error(`writer failed (see ${writer.logFile})`);
      await sleep(5000); // the window's last commits get shipped
      const times = JSON.parse(await Deno.readTextFile(timesFile)).times as number[][];
      lag = await lags(ctx, proxy.events, keyPrefix, times, from, to);
    }
    const exitCode = await child.stop();
    const byOp: Record<string, number> = countByOp(window);
    for (const op of Object.keys(byOp)) byOp[op] = byOp[op] * 60 / elapsed;
    return {
      tool,
      databases: n,
      busy,
      readyS,
      windowS: elapsed,
      steadyMB: median(samples.map((s) => s.rss)),
      peakMB,
      cpuPercent,
      requestsPerMinute: window.length * 60 / elapsed,
      byOp,
      lag,
      load: [load0, load1],
      exitCode,
    };
  } finally {
    await writer?.stop("SIGKILL", 1000);
    await child.stop("SIGKILL", 5000);
    await removeSub(ctx, sub);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

const secs = (ms: number | null | undefined) =>
  ms === null || ms === undefined ? "-" : (ms / 1000).toFixed(2);

/** The side-by-side Markdown table: one line per tool and row. */
export function sideBySideTable(results: SideResult[]): string {
  const lines = [
    "| databases | tool | RSS steady (MB) | RSS peak (MB) | CPU (% of a core) | lag p50 / p99 (s) | requests/min | load avg 1 min (start → end) |",
    "|---|---|---:|---:|---:|---:|---:|---|",
  ];
  for (const r of results) {
    const ops = Object.entries(r.byOp).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v.toFixed(0)}`)
      .join(", ");
    lines.push(
      `| ${r.databases} ${r.busy ? `busy (${RATE} commits/s each)` : "idle"} | ${r.tool} | ${
        num(r.steadyMB)
      } | ` +
        `${num(r.peakMB)} | ${num(r.cpuPercent)} | ${
          r.lag ? `${secs(r.lag.p50Ms)} / ${secs(r.lag.p99Ms)}` : "-"
        } | ` +
        `${r.requestsPerMinute.toFixed(0)}${ops ? ` (${ops})` : ""} | ${r.load[0].toFixed(2)} → ${
          r.load[1].toFixed(2)
        } |`,
    );
  }
  return lines.join("\n");
}

async function measure(ctx: BenchContext): Promise<Row[]> {
  const idleSizes = ctx.quick ? [1, 10, 100] : [1, 10, 100, 1000];
  const busySizes = ctx.quick ? [1, 10] : [1, 10, 100];
  const litestream = await ensureLitestream(ctx.log);
  const proxy = await CountingProxy.start(ctx.s3.endpoint);
  const results: SideResult[] = [];
  try {
    for (const [busy, sizes] of [[false, idleSizes], [true, busySizes]] as const) {
      for (const n of sizes) {
        const template = await scratch(ctx, `vs-template-${n}`);
        await run("python3", [MAKE_DBS, template, String(n)]);
        for (const tool of TOOLS) {
          ctx.log(`litestream: ${tool}, ${n} ${busy ? "busy" : "idle"} database(s) ...`);
          results.push(
            await retryOnce(
              ctx,
              `${tool} ${n}`,
              () => scenario(ctx, tool, litestream, template, n, busy, proxy),
            ),
          );
        }
        await Deno.remove(template, { recursive: true }).catch(() => {});
      }
    }
  } finally {
    await proxy.close();
  }
  const table = sideBySideTable(results);
  ctx.details.litestream = { settleS: SETTLE_S, windowS: WINDOW_S, ratePerDatabase: RATE, results, table };
  ctx.extraMarkdown.push(
    "### Side by side with Litestream 0.3.13 (figure 8)\n\n" +
      `Same RGW, same databases (a fresh copy each), one tool at a time, both through one counting proxy; ${SETTLE_S} s ` +
      `settle, ${WINDOW_S} s window. Lag: PUT completion at the proxy − COMMIT time, for up to ${MAX_LAG_DBS} ` +
      "databases, objects decoded afterwards (walsync zstd, Litestream LZ4). Load average shows how busy the " +
      "(shared) machine was.\n\n" + table,
  );
  const rows: Row[] = [];
  for (let i = 0; i + 1 < results.length; i += 2) {
    const [w, l] = [results[i], results[i + 1]];
    const label = `${w.databases} ${w.busy ? "busy" : "idle"} db(s)`;
    const ref = (value: number | null, unit: string) => ({ what: "Litestream 0.3.13", value, unit });
    rows.push({
      figure: "8",
      what: `${label}: steady RSS (peak ${num(w.peakMB)} vs ${num(l.peakMB)} MB)`,
      value: w.steadyMB,
      unit: "MB",
      reference: ref(l.steadyMB, "MB"),
      ratio: ratio(w.steadyMB, l.steadyMB),
      goal: {
        text: "ahead of Litestream",
        met: w.steadyMB === null || l.steadyMB === null ? null : w.steadyMB < l.steadyMB,
      },
    });
    rows.push({
      figure: "8",
      what: `${label}: CPU over ${WINDOW_S} s`,
      value: w.cpuPercent,
      unit: "% of a core",
      reference: ref(l.cpuPercent, "%"),
      ratio: ratio(w.cpuPercent, l.cpuPercent),
    });
    rows.push({
      figure: "8",
      what: `${label}: S3 requests/min`,
      value: w.requestsPerMinute,
      unit: "/min",
      reference: ref(l.requestsPerMinute, "/min"),
      ratio: ratio(w.requestsPerMinute, l.requestsPerMinute),
    });
    if (w.lag && l.lag) {
      rows.push({
        figure: "8",
        what: `${label}: lag commit → readable p99 (p50 ${secs(w.lag.p50Ms)} vs ${secs(l.lag.p50Ms)} s)`,
        value: w.lag.p99Ms === null ? null : w.lag.p99Ms / 1000,
        unit: "s",
        reference: ref(l.lag.p99Ms === null ? null : l.lag.p99Ms / 1000, "s"),
        ratio: ratio(w.lag.p99Ms, l.lag.p99Ms),
      });
    }
  }
  return rows;
}

/** Figure 8: walsync next to Litestream. */
export const litestreamModule: BenchModule = { name: "litestream", figures: ["8"], run: measure };
