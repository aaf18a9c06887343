/**
 * Figure 6: cost in S3 requests, for an idle database and for one committing 10 times a second,
 * and bytes stored per byte of WAL written.
 *
 * Two `walsync watch --sync-interval 1` processes (one database each) run at the same time behind
 * one counting proxy (bench/lib/proxy.ts), under different prefixes, so their requests are told
 * apart by key. After both have started (initial snapshot) and 35 s more (the first background passes:
 * retention at start, compaction 30 s in, list each database once), the requests are counted over a
 * window of 60 s (20 s with --quick) and scaled to a minute. The busy database's requests are split
 * into the sync loop's (segments, snapshots, state.json) and the background passes' (compaction reads
 * each segment once; see isBackground).
 * The busy database's writer (bench/lib/writer.py, a separate python3 process) runs with SQLite's
 * auto-checkpoint off, so all it writes is WAL frames: its write(2) byte count (`wchar` in
 * /proc/<pid>/io) over the window is the WAL written. Bytes stored = bodies of the objects walsync
 * PUT in the window (all new objects: segments are never overwritten), cross-checked with the growth
 * of the prefix's total size between a LIST before and after the window.
 * @module
 */
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
import { bytesWritten, Child, run, sleep, spawnWalsync } from "./lib/proc.ts";
import { countByOp, CountingProxy, type RequestEvent, type S3Operation } from "./lib/proxy.ts";
import { ratio, type Row } from "./lib/report.ts";
import { prefixUsage } from "./lib/s3.ts";

const MAKE_DBS = fileURLToPath(new URL("./lib/make_dbs.py", import.meta.url));
const WRITER = fileURLToPath(new URL("./lib/writer.py", import.meta.url));
const SYNC_INTERVAL_S = 1;
/** From "watching" to the window: past retention's pass at start and compaction's first (30 s in). */
const FIRST_PASSES_S = 35;
const BUSY_RATE = 10;

/** Requests per minute by operation. */
type PerMinute = Record<S3Operation, number>;

function perMinute(events: RequestEvent[], seconds: number): PerMinute {
  const counts = countByOp(events);
  for (const op of Object.keys(counts) as S3Operation[]) counts[op] = counts[op] * 60 / seconds;
  return counts;
}

function breakdown(p: PerMinute, leasePerMinute: number): string {
  const other = p.DELETE + p.POST + p.OTHER;
  return [
    `PUT ${p.PUT.toFixed(0)}`,
    `GET ${p.GET.toFixed(0)}`,
    `LIST ${p.LIST.toFixed(0)}`,
    `HEAD ${p.HEAD.toFixed(0)}`,
    ...(other ? [`other ${other.toFixed(0)}`] : []),
  ].join(" / ") + (leasePerMinute ? `; lease ${leasePerMinute.toFixed(1)}` : "");
}

/**
 * Requests of watch's background passes (compaction, retention: docs/design.md §11), told apart from
 * the sync loop's by what they touch: listings, reads of stored segments (a level-1 build reads each
 * segment once), page sets, the retention mark, deletions. The sync loop only PUTs and HEADs segments,
 * snapshots and state.json.
 */
function isBackground(e: RequestEvent): boolean {
  return e.op === "LIST" || e.op === "DELETE" || e.op === "POST" || e.key.includes("/pages/") ||
    (e.op === "GET" && e.key.includes("/wal/")) || e.key.endsWith("/retention.json");
}

/** Requests on the single-writer lease object (`<name>/lease.json`), counted apart from data. */
function isLease(e: RequestEvent): boolean {
  return e.key.endsWith("/lease.json");
}

async function measure(ctx: BenchContext): Promise<Row[]> {
  const windowS = ctx.quick ? 20 : 60;
  const dir = await scratch(ctx, "cost");
  const [idleDb] = (await run("python3", [MAKE_DBS, await scratch(ctx, "cost/idle"), "1"])).trim().split(
    "\n",
  );
  const [busyDb] = (await run("python3", [MAKE_DBS, await scratch(ctx, "cost/busy"), "1"])).trim().split(
    "\n",
  );
  const proxy = await CountingProxy.start(ctx.s3.endpoint);
  const keyPrefix = (who: string) => `${ctx.prefix}/cost/${who}/`;
  const watch = (who: string, db: string) =>
    spawnWalsync(`cost-${who}`, [
      "watch",
      db,
      "-b",
      s3Url(ctx, `cost/${who}`),
      "--endpoint",
      proxy.url,
      "--sync-interval",
      String(SYNC_INTERVAL_S),
    ], logFile(ctx, `cost-watch-${who}`));
  const children: Child[] = [];
  try {
    ctx.log(`cost: two watch processes behind the counting proxy on ${proxy.url} ...`);
    const idle = watch("idle", idleDb);
    const busy = watch("busy", busyDb);
    children.push(idle, busy);
    await Promise.all([idle, busy].map((c) => c.waitForLine(/watching \d+ database/, 120_000)));
    const ready = proxy.events.length;
    // The first background passes after start list each database once (retention at once, compaction
    // 30 s in by default); the window starts after them, so that it shows the steady state.
    ctx.log(`cost: waiting ${FIRST_PASSES_S} s for the first background passes ...`);
    await sleep(FIRST_PASSES_S * 1000);
    const firstPassEvents = proxy.events.slice(ready).filter((e) => e.key.startsWith(keyPrefix("idle")));
    const firstPass = firstPassEvents.some((e) => e.op === "LIST");
    const timesFile = join(dir, "writer-times.json");
    const writer = new Child("cost-writer", "python3", [
      WRITER,
      "--rate",
      String(BUSY_RATE),
      "--duration",
      String(windowS + 10),
      "--out",
      timesFile,
      "--autocheckpoint",
      "0",
      busyDb,
    ], logFile(ctx, "cost-writer"));
    children.push(writer);
    await sleep(3000);

    ctx.log(`cost: counting requests for ${windowS} s ...`);
    const client = ctx.client;
    const t0 = performance.now();
    const from = proxy.events.length;
    const wal0 = bytesWritten(writer.pid);
    const stored0 = await prefixUsage(client, keyPrefix("busy"));
    await sleep(windowS * 1000 - (performance.now() - t0));
    const to = proxy.events.length;
    const wal1 = bytesWritten(writer.pid);
    const stored1 = await prefixUsage(client, keyPrefix("busy"));
    const seconds = (performance.now() - t0) / 1000;

    if (!idle.alive || !busy.alive) {
      throw new Error("a watch process exited during the measurement (see its log)");
    }
    await writer.stop("SIGTERM");
    const codes = await Promise.all([idle.stop(), busy.stop()]);
    const window = proxy.events.slice(from, to);
    const startup = proxy.events.slice(0, ready);
    const of = (events: RequestEvent[], who: string) =>
      events.filter((e) => e.key.startsWith(keyPrefix(who)));
    const data = (who: string) => of(window, who).filter((e) => !isLease(e));
    const leasePm = (who: string) => of(window, who).filter(isLease).length * 60 / seconds;
    const idlePm = perMinute(data("idle"), seconds);
    const busyPm = perMinute(data("busy"), seconds);
    const busySyncPm = perMinute(data("busy").filter((e) => !isBackground(e)), seconds);
    const busyBackgroundPm = perMinute(data("busy").filter(isBackground), seconds);
    const firstPassCounts = countByOp(firstPassEvents.filter((e) => !isLease(e)));
    const walWritten = wal1 - wal0;
    const storedGrowth = stored1.bytes - stored0.bytes;
    const uploaded = data("busy").filter((e) => e.op === "PUT").reduce((n, e) => n + e.bytesIn, 0);
    const putsPerSync = busySyncPm.PUT / (60 / SYNC_INTERVAL_S);
    ctx.details.cost = {
      windowSeconds: seconds,
      idlePerMinute: idlePm,
      idleFirstBackgroundPasses: firstPassCounts,
      busyPerMinute: busyPm,
      busySyncLoopPerMinute: busySyncPm,
      busyBackgroundPerMinute: busyBackgroundPm,
      leaseRequestsPerMinute: { idle: leasePm("idle"), busy: leasePm("busy") },
      startupRequestsPerDatabase: {
        idle: countByOp(of(startup, "idle")),
        busy: countByOp(of(startup, "busy")),
      },
      walBytesWritten: walWritten,
      storedBytesGrowth: storedGrowth,
      objectsAdded: stored1.objects - stored0.objects,
      putBodyBytes: uploaded,
      watchExitCodes: codes,
      failedRequests: window.filter((e) => e.status >= 400).length,
    };
    const idleData = idlePm.PUT + idlePm.GET + idlePm.LIST;
    return [
      {
        figure: "6",
        what: `idle database: requests/min (${breakdown(idlePm, leasePm("idle"))})`,
        value: idleData,
        unit: "PUT+GET+LIST/min",
        goal: { text: "no PUT/GET/LIST per idle minute (lease renewals aside)", met: idleData === 0 },
        note:
          "Requests on the lease object (`<name>/lease.json`, renewed every third of --lease-seconds) are " +
          "counted apart; none may fall in a window shorter than the renewal period. The window starts " +
          `${FIRST_PASSES_S} s after start, past the first background passes (retention at start, ` +
          `compaction 30 s in), which list each database once (here ${
            firstPass ? breakdown(firstPassCounts, 0) : "no LIST seen"
          } for the idle database).`,
      },
      {
        figure: "6",
        what: `database committing ${BUSY_RATE}/s: sync loop requests/min (${breakdown(busySyncPm, 0)})`,
        value: busySyncPm.PUT,
        unit: "PUT/min",
        reference: {
          what: `sync intervals per minute (--sync-interval ${SYNC_INTERVAL_S})`,
          value: 60,
          unit: "",
        },
        ratio: putsPerSync,
        goal: { text: "≤ 1 PUT per sync interval", met: putsPerSync <= 1.0001 },
      },
      {
        figure: "6",
        what: "busy database: LIST + GET per minute of the sync loop",
        value: busySyncPm.LIST + busySyncPm.GET,
        unit: "/min",
        goal: { text: "no LIST in the steady-state loop", met: busySyncPm.LIST + busySyncPm.GET === 0 },
      },
      {
        figure: "6",
        what: `busy database: background passes, requests/min (${breakdown(busyBackgroundPm, 0)})`,
        value: busyBackgroundPm.GET,
        unit: "GET/min",
        reference: { what: "segments stored per minute", value: busySyncPm.PUT, unit: "/min" },
        ratio: ratio(busyBackgroundPm.GET, busySyncPm.PUT),
        note: `All requests of the busy database: ${breakdown(busyPm, leasePm("busy"))} per minute. ` +
          "Compaction reads every segment once to build its level-1 set (docs/design.md §11.1, " +
          "trade-offs), so about one GET per segment, plus a few LISTs per pass and a PUT and HEAD per set.",
      },
      {
        figure: "6",
        what: "busy database: bytes stored per byte of WAL written",
        value: ratio(uploaded, walWritten),
        unit: "B/B",
        reference: {
          what: "WAL written by the application in the window",
          value: walWritten / 1e6,
          unit: "MB",
        },
        note:
          `Over ${
            seconds.toFixed(0)
          } s the writer wrote ${walWritten} bytes of WAL (its wchar) and walsync ` +
          `PUT ${uploaded} bytes of new objects (a LIST before and after: +${storedGrowth} bytes in ` +
          `${stored1.objects - stored0.objects} objects, within one segment of it). Object metadata ` +
          `(~0.5 KB of headers per object) is not counted.`,
      },
    ];
  } finally {
    await Promise.all(children.map((c) => c.stop("SIGKILL", 1000)));
    await proxy.close();
    await removeSub(ctx, "cost");
  }
}

/** Figure 6: S3 requests and stored bytes. */
export const costModule: BenchModule = {
  name: "cost",
  figures: ["6"],
  run: (ctx) => retryOnce(ctx, "cost", () => measure(ctx)),
};
