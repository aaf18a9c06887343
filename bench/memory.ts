/**
 * Figures 5 and 7: memory of `walsync watch` with 1, 10, 100 and 1000 idle databases (1000 is
 * left out with --quick) and with 100 busy ones; marginal memory per database; CPU with 100 idle
 * databases. Reference: an idle `deno` process running next to it the whole time.
 *
 * For each size: N small WAL databases (bench/lib/make_dbs.py), one `watch` process on S3
 * (`--sync-interval 1`), started and left to settle 5 s after it reports "watching" (35 s and 60 s
 * for the 100 and 1000 databases of figure 7: past the first compaction pass); then VmRSS
 * is sampled every 0.5 s for 10 s (steady = median) and VmHWM read (peak, start-up included:
 * every database gets its initial snapshot). With 100 databases the window is 60 s (15 s with
 * --quick) and the CPU time of `watch` (utime + stime from /proc/<pid>/stat) over it is figure 7.
 * Busy: the 100-database run of bench/lag.ts (2 commits/s per database), if it ran; else a run of
 * its load without polling.
 * Marginal RSS per database: the slope between the two largest idle sizes. Its reference: a deno
 * process that only opens the same databases with node:sqlite, one read transaction each.
 * @module
 */
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
  openFds,
  run,
  sampleRss,
  sleep,
  spawnWalsync,
} from "./lib/proc.ts";
import { ratio, type Row } from "./lib/report.ts";
import { median } from "./lib/stats.ts";
import { type BusyResult, busyScenario } from "./lag.ts";

const MAKE_DBS = fileURLToPath(new URL("./lib/make_dbs.py", import.meta.url));
const SQLITE_RSS = fileURLToPath(new URL("./lib/sqlite_rss.ts", import.meta.url));

/** What one idle scenario measured. */
interface IdleResult {
  databases: number;
  startupS: number;
  windowS: number;
  steadyMB: number;
  peakMB: number;
  /** The last sample, with its anonymous / file / shared-memory split. */
  last: MemoryStatus;
  fds: number;
  cpuPercent: number;
  /** The idle deno process over the same window. */
  reference: { rssMB: number; cpuPercent: number };
  /** node:sqlite alone with the same databases open (only when asked). */
  sqliteOnly?: { before: number; after: number; count: number };
  stopS: number;
  exitCode: number;
}

/**
 * Seconds from "watching" to the CPU windows: past the first compaction pass (30 s in by default;
 * at 1000 databases it lists each of them and takes ~10 s of its own).
 */
const FIRST_PASS_S = { 100: 35, 1000: 60 } as Record<number, number>;

async function idleScenario(
  ctx: BenchContext,
  n: number,
  windowS: number,
  reference: Child,
  withSqliteReference: boolean,
  settleS = 5,
): Promise<IdleResult> {
  const name = `idle-${n}`;
  const dir = await scratch(ctx, name);
  const dbs = (await run("python3", [MAKE_DBS, dir, String(n)])).trim().split("\n");
  const started = performance.now();
  const watch = spawnWalsync(
    name,
    ["watch", ...dbs, "-b", s3Url(ctx, name), "--sync-interval", "1"],
    logFile(ctx, name),
  );
  try {
    await watch.waitForLine(/watching \d+ database/, 900_000);
    const startupS = (performance.now() - started) / 1000;
    await sleep(settleS * 1000);
    const cpu0 = cpuSeconds(watch.pid);
    const ref0 = cpuSeconds(reference.pid);
    const t0 = performance.now();
    const samples = await sampleRss(watch.pid, windowS);
    if (!watch.alive) throw new Error(`watch exited during the measurement (see ${watch.logFile})`);
    const elapsed = (performance.now() - t0) / 1000;
    const cpuPercent = (cpuSeconds(watch.pid) - cpu0) / elapsed * 100;
    const refCpu = (cpuSeconds(reference.pid) - ref0) / elapsed * 100;
    const last = memoryStatus(watch.pid)!;
    const fds = openFds(watch.pid);
    const sqliteOnly = withSqliteReference
      ? JSON.parse(await run(Deno.execPath(), ["run", "-A", SQLITE_RSS, ...dbs]))
      : undefined;
    const stopping = performance.now();
    const exitCode = await watch.stop();
    return {
      databases: n,
      startupS,
      windowS: elapsed,
      steadyMB: median(samples.map((s) => s.rss))!,
      peakMB: last.hwm,
      last,
      fds,
      cpuPercent,
      reference: { rssMB: memoryStatus(reference.pid)!.rss, cpuPercent: refCpu },
      sqliteOnly,
      stopS: (performance.now() - stopping) / 1000,
      exitCode,
    };
  } finally {
    await watch.stop("SIGKILL", 1000);
    await removeSub(ctx, name);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

async function measure(ctx: BenchContext): Promise<Row[]> {
  const sizes = ctx.quick ? [1, 10, 100] : [1, 10, 100, 1000];
  const want5 = ctx.selected("5");
  const cpuWindowS = ctx.quick ? 15 : 60;
  const reference = new Child(
    "idle-deno",
    Deno.execPath(),
    ["eval", "setInterval(() => {}, 3_600_000)"],
    logFile(ctx, "idle-deno"),
  );
  const idle: IdleResult[] = [];
  let busy: BusyResult | null = null;
  try {
    for (const n of want5 ? sizes : [100]) {
      const windowS = n === 100 && ctx.selected("7")
        ? cpuWindowS
        : n === 1000 && ctx.selected("7")
        ? 20
        : ctx.quick
        ? 5
        : 10;
      ctx.log(`memory: ${n} idle database(s), ${windowS} s window ...`);
      const withSqlite = want5 && n === sizes.at(-1);
      // The CPU figures start after the first background pass (compaction lists every database once
      // after start, 30 s in by default): they are about idle databases, not start-up.
      const settleS = ctx.selected("7") ? FIRST_PASS_S[n] ?? 5 : 5;
      idle.push(
        await retryOnce(
          ctx,
          `memory ${n}`,
          () => idleScenario(ctx, n, windowS, reference, withSqlite, settleS),
        ),
      );
    }
    if (want5) {
      busy = ctx.shared.busy100 as BusyResult | undefined ?? null;
      if (!busy) {
        ctx.log("memory: 100 busy databases (the load of the lag benchmark, no polling) ...");
        const options = { rate: 2, durationS: ctx.quick ? 15 : 30, poll: false };
        busy = await retryOnce(ctx, "memory busy", () => busyScenario(ctx, 100, options));
      }
    }
  } finally {
    await reference.stop("SIGKILL", 1000);
  }
  ctx.details.memory = { idle, busy100: busy && { ...busy, lagsMs: undefined } };
  const refRss = idle[0].reference.rssMB;
  const rows: Row[] = [];
  const goals: Record<number, number> = { 100: 80, 1000: 150 };
  if (want5) {
    for (const r of idle) {
      rows.push({
        figure: "5",
        what: `watch, ${r.databases} idle database(s): steady RSS (peak ${r.peakMB.toFixed(0)} MB)`,
        value: r.steadyMB,
        unit: "MB",
        reference: { what: "idle deno process", value: refRss, unit: "MB" },
        ratio: ratio(r.steadyMB, refRss),
        goal: goals[r.databases]
          ? {
            text: `≤ ${goals[r.databases]} MB at ${r.databases} databases`,
            met: r.steadyMB <= goals[r.databases],
          }
          : undefined,
      });
    }
    if (busy) {
      const steady = median(busy.rss.map((m) => m.rss));
      rows.push({
        figure: "5",
        what: `watch, 100 busy databases (2 commits/s each): steady RSS (peak ${
          busy.peakRssMB?.toFixed(0)
        } MB)`,
        value: steady,
        unit: "MB",
        reference: { what: "idle deno process", value: refRss, unit: "MB" },
        ratio: ratio(steady, refRss),
        goal: { text: "≤ 80 MB at 100 databases", met: steady === null ? null : steady <= 80 },
      });
    }
    const [a, b] = idle.slice(-2);
    const marginalKB = (b.steadyMB - a.steadyMB) / (b.databases - a.databases) * 1000;
    const s = b.sqliteOnly;
    const sqliteKB = s ? (s.after - s.before) / s.count * 1000 : null;
    rows.push({
      figure: "5",
      what: `marginal RSS per idle database (${a.databases} → ${b.databases})`,
      value: marginalKB,
      unit: "KB",
      reference: {
        what: "node:sqlite alone, one read transaction per database",
        value: sqliteKB,
        unit: "KB",
      },
      ratio: ratio(marginalKB, sqliteKB),
      goal: { text: "≤ 100 KB per database", met: marginalKB <= 100 },
    });
  }
  const cpu = idle.find((r) => r.databases === 100);
  if (cpu && ctx.selected("7")) {
    rows.push({
      figure: "7",
      what: `CPU of watch, 100 idle databases, over ${cpu.windowS.toFixed(0)} s`,
      value: cpu.cpuPercent,
      unit: "% of a core",
      reference: { what: "idle deno process, same window", value: cpu.reference.cpuPercent, unit: "%" },
      goal: { text: "< 0.5% of one core at 100 databases", met: cpu.cpuPercent < 0.5 },
      note: `The CPU windows start ${FIRST_PASS_S[100]} s (100 databases) and ${FIRST_PASS_S[1000]} s ` +
        '(1000) after watch reports "watching", after the first compaction pass (which lists every ' +
        "database once after start). Lease renewals (one conditional PUT per database every third of " +
        "--lease-seconds, 200 s by default) fall in a window or not.",
    });
  }
  const largest = idle.at(-1)!;
  if (ctx.selected("7") && largest.databases > 100) {
    rows.push({
      figure: "7",
      what: `CPU of watch, ${largest.databases} idle databases, over ${largest.windowS.toFixed(0)} s`,
      value: largest.cpuPercent,
      unit: "% of a core",
      reference: { what: "idle deno process, same window", value: largest.reference.cpuPercent, unit: "%" },
      goal: { text: "< 1% of one core at 1000 databases", met: largest.cpuPercent < 1 },
    });
  }
  return rows;
}

/** Figures 5 and 7: memory and idle CPU of `watch`. */
export const memoryModule: BenchModule = { name: "memory", figures: ["5", "7"], run: measure };
