/**
 * Figure 9 (issue #8, "Fast, parallel restore"): a latest restore with walsync side by side with
 * Litestream 0.3.13, from the same RGW, with plain parallel GETs of walsync's objects as the
 * reference. Litestream is installed into `.tools/litestream/` when missing (bench/lib/litestream.ts).
 *
 * Workload: one database with a ~3 MiB starting state (bench/lib/grow_db.py), one byte-identical
 * copy per tool. Both tools replicate at once, each its own copy (`walsync watch --sync-interval 1`,
 * `litestream replicate` with `sync-interval: 1s`), both through the counting proxy
 * (bench/lib/proxy.ts). Once each has stored its first object, one writer adds ~77 MiB (`--quick`:
 * ~24 MiB) in large transactions one second apart (17; `--quick`: 6), the same rows to both copies.
 * When neither tool has PUT anything for a few seconds, both are stopped (SIGTERM).
 *
 * Then, one at a time, straight to RGW (no proxy), alternating, RUNS times each:
 * - `walsync restore NAME -o OUT -b s3://…` (downloads, verifies every object, integrity_check, fsync);
 * - `litestream restore -config … -o OUT DBPATH`;
 * - the reference: bench/lib/read_objects.ts, s3-lite-client listing walsync's prefix and reading
 *   every object with 8 GETs in flight (and with 1, to show what serial fetching costs).
 * Time and peak RSS come from `/usr/bin/time` (process start included for all); the median run is
 * reported, with the fastest and slowest (RUNS: 5, `--quick`: 3). MB/s = restored database size / time. Correctness: walsync's restore equals its source
 * after `PRAGMA wal_checkpoint(TRUNCATE)` byte for byte (`cmp`); Litestream's passes
 * `PRAGMA integrity_check` and has the source's row count and content digest (SHA-256 over the rows).
 * @module
 */
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { type BenchContext, type BenchModule, logFile, removeSub, s3Url, scratch } from "./lib/context.ts";
import { ensureLitestream, litestreamConfig, spawnLitestream } from "./lib/litestream.ts";
import {
  type Child,
  loadAverage,
  run,
  sleep,
  spawnWalsync,
  type Timed,
  timed,
  timedWalsync,
} from "./lib/proc.ts";
import { CountingProxy } from "./lib/proxy.ts";
import { num, ratio, type Row } from "./lib/report.ts";
import { prefixUsage } from "./lib/s3.ts";

const GROW = fileURLToPath(new URL("./lib/grow_db.py", import.meta.url));
const READ_OBJECTS = fileURLToPath(new URL("./lib/read_objects.ts", import.meta.url));
const START_MIB = 3;
const QUIET_S = 4;

/** One measured restore (or plain read) and what it produced. */
export interface RestoreRun {
  who: string;
  seconds: number;
  peakRssMB: number;
  ok: boolean;
  error?: string;
}

/** What figure 9 measured. */
export interface RestoreSideBySide {
  addedMiB: number;
  transactions: number;
  databaseBytes: number;
  rows: number;
  objects: { walsync: { objects: number; bytes: number }; litestream: { objects: number; bytes: number } };
  walsyncSegments: number | null;
  runs: Record<string, RestoreRun[]>;
  best: Record<string, RestoreRun | null>;
  correct: { walsyncIdentical: boolean; litestreamIntegrity: string; litestreamSameContent: boolean };
  plainBytes: number;
  load: [number, number];
}

/** Row count and SHA-256 of every row (in id order) of a database, via sqlite3. */
async function contentDigest(db: string): Promise<{ rows: number; digest: string; integrity: string }> {
  const integrity = (await run("sqlite3", [db, "PRAGMA integrity_check"])).trim();
  const rows = Number((await run("sqlite3", [db, "SELECT count(*) FROM t"])).trim());
  const dump = await run("sqlite3", [db, "SELECT id, marker, n, payload FROM t ORDER BY id"]);
  const digest = Array.from(
    new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(dump))),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  return { rows, digest, integrity };
}

/** Waits until `child` has PUT something under `keyPrefix` (its first snapshot). */
async function waitForFirstPut(proxy: CountingProxy, keyPrefix: string, child: Child): Promise<void> {
  const deadline = performance.now() + 120_000;
  while (!proxy.events.some((e) => e.op === "PUT" && e.status === 200 && e.key.startsWith(keyPrefix))) {
    if (!child.alive) {
      throw new Error(`${child.name} exited before it stored anything (see ${child.logFile})`);
    }
    if (performance.now() > deadline) throw new Error(`${child.name} stored nothing within 120 s`);
    await sleep(200);
  }
}

/** Waits until no PUT under any of `keyPrefixes` has completed for QUIET_S seconds. */
async function waitForQuiet(proxy: CountingProxy, keyPrefixes: string[]): Promise<void> {
  const deadline = performance.now() + 120_000;
  while (performance.now() < deadline) {
    const last = proxy.events.filter((e) => e.op === "PUT" && keyPrefixes.some((p) => e.key.startsWith(p)))
      .reduce((t, e) => Math.max(t, e.time), 0);
    if (Date.now() - last > QUIET_S * 1000) return;
    await sleep(500);
  }
  throw new Error("the tools were still uploading after 120 s");
}

function asRun(who: string, t: Timed): RestoreRun {
  return { who, seconds: t.seconds, peakRssMB: t.peakRssMB, ok: t.ok, error: t.error };
}

/** The median successful run (by time), or null when none succeeded. */
function medianRun(runs: RestoreRun[]): RestoreRun | null {
  const ok = runs.filter((r) => r.ok).sort((a, b) => a.seconds - b.seconds);
  return ok.length ? ok[Math.floor((ok.length - 1) / 2)] : null;
}

/** The side-by-side Markdown table of figure 9. */
export function restoreTable(r: RestoreSideBySide): string {
  const mb = r.databaseBytes / 1e6;
  const spread = (who: string) => {
    const ok = r.runs[who].filter((x) => x.ok).map((x) => x.seconds);
    return ok.length ? `${num(Math.min(...ok))}–${num(Math.max(...ok))}` : "-";
  };
  const line = (who: string, key: string, objects: string, note: string) => {
    const run = r.best[key];
    return `| ${who} | ${num(run?.seconds ?? null)} | ${spread(key)} | ${
      run ? num(mb / run.seconds) : "-"
    } | ${num(run?.peakRssMB ?? null)} | ${objects} | ${note} |`;
  };
  const w = r.objects.walsync;
  const l = r.objects.litestream;
  const plainNote = `${num(r.plainBytes / 1e6)} MB stored read, no checks, nothing written`;
  return [
    "| restore (latest) | seconds (median) | fastest–slowest | MB/s of database | peak RSS (MB) | objects stored (bytes) | check |",
    "|---|---:|---:|---:|---:|---|---|",
    line(
      "walsync restore",
      "walsync",
      `${w.objects} (${num(w.bytes / 1e6)} MB)`,
      r.correct.walsyncIdentical ? "byte-identical to the checkpointed source" : "**NOT identical**",
    ),
    line(
      "litestream restore",
      "litestream",
      `${l.objects} (${num(l.bytes / 1e6)} MB)`,
      `integrity_check ${r.correct.litestreamIntegrity}, ${
        r.correct.litestreamSameContent ? "same rows and digest" : "**rows differ**"
      }`,
    ),
    line("plain GETs of walsync's objects, 8 in flight", "plain GET ×8", `${w.objects}`, plainNote),
    line("plain GETs of walsync's objects, 1 at a time", "plain GET ×1", `${w.objects}`, plainNote),
  ].join("\n");
}

async function measure(ctx: BenchContext): Promise<Row[]> {
  const addedMiB = ctx.quick ? 24 : 77;
  const transactions = ctx.quick ? 6 : 17;
  const runsEach = ctx.quick ? 3 : 5;
  const litestream = await ensureLitestream(ctx.log);
  const dir = await scratch(ctx, "restore");
  const sub = "restore";
  const wDb = join(dir, "w", "app.db");
  const lDb = join(dir, "l", "app.db");
  await Deno.mkdir(join(dir, "w"));
  await Deno.mkdir(join(dir, "l"));
  await run("python3", [GROW, "init", String(START_MIB), wDb, lDb]);
  const wPrefix = `${ctx.prefix}/${sub}/w/`;
  const lPrefix = `${ctx.prefix}/${sub}/l/`;
  const proxy = await CountingProxy.start(ctx.s3.endpoint);
  let watch: Child | null = null;
  let replicate: Child | null = null;
  let rows: number;
  try {
    ctx.log(`restore: replicating a ${START_MIB} MiB database with both tools ...`);
    watch = spawnWalsync(
      "restore-watch",
      ["watch", wDb, "-b", s3Url(ctx, `${sub}/w`), "--endpoint", proxy.url, "--sync-interval", "1"],
      logFile(ctx, "restore-watch"),
    );
    replicate = await spawnLitestream(
      litestream,
      "restore-replicate",
      [lDb],
      { endpoint: proxy.url, bucket: ctx.s3.bucket, region: ctx.s3.region, prefix: `${ctx.prefix}/${sub}/l` },
      dir,
      logFile(ctx, "restore-replicate"),
    );
    await waitForFirstPut(proxy, wPrefix, watch);
    await waitForFirstPut(proxy, lPrefix, replicate);
    ctx.log(`restore: adding ${addedMiB} MiB in ${transactions} transactions 1 s apart ...`);
    rows = Number(
      (await run("python3", [GROW, "grow", String(addedMiB), String(transactions), "1", wDb, lDb])).trim(),
    );
    await waitForQuiet(proxy, [wPrefix, lPrefix]);
    if (!watch.alive || !replicate.alive) throw new Error("a replicating tool exited early (see the logs)");
  } finally {
    await Promise.all([watch?.stop("SIGTERM", 30_000), replicate?.stop("SIGTERM", 30_000)]);
    await proxy.close();
  }
  await run("sqlite3", [wDb, "PRAGMA wal_checkpoint(TRUNCATE)"]);
  await run("sqlite3", [lDb, "PRAGMA wal_checkpoint(TRUNCATE)"]);
  const databaseBytes = (await Deno.stat(wDb)).size;
  const objects = {
    walsync: await prefixUsage(ctx.client, `${wPrefix}app/`),
    litestream: await prefixUsage(ctx.client, lPrefix),
  };

  // Restores, straight to RGW, alternating so that a busy moment of the machine hits all alike.
  const lConfig = join(dir, "restore.litestream.yml");
  await Deno.writeTextFile(
    lConfig,
    litestreamConfig([lDb], {
      endpoint: ctx.s3.endpoint,
      bucket: ctx.s3.bucket,
      region: ctx.s3.region,
      prefix: `${ctx.prefix}/${sub}/l`,
    }),
  );
  const wOut = join(dir, "restored-walsync.db");
  const lOut = join(dir, "restored-litestream.db");
  const removeOut = async (path: string) => {
    for (const p of [path, `${path}-wal`, `${path}-shm`]) await Deno.remove(p).catch(() => {});
  };
  const runs: Record<string, RestoreRun[]> = {
    walsync: [],
    litestream: [],
    "plain GET ×8": [],
    "plain GET ×1": [],
  };
  let walsyncSegments: number | null = null;
  let plainBytes = 0;
  const deno = Deno.execPath();
  const load0 = loadAverage()[0];
  for (let i = 0; i < runsEach; i++) {
    ctx.log(`restore: run ${i + 1} of ${runsEach} (walsync, litestream, plain GETs) ...`);
    await removeOut(wOut);
    const w = await timedWalsync([
      "restore",
      "app",
      "-o",
      wOut,
      "-b",
      s3Url(ctx, `${sub}/w`),
      "--endpoint",
      ctx.s3.endpoint,
      "--json",
    ]);
    runs.walsync.push(asRun("walsync", w));
    if (w.ok) walsyncSegments = JSON.parse(w.stdout).segments ?? null;
    await removeOut(lOut);
    runs.litestream.push(
      asRun("litestream", await timed(litestream, ["restore", "-config", lConfig, "-o", lOut, lDb])),
    );
    for (const [who, concurrency] of [["plain GET ×8", 8], ["plain GET ×1", 1]] as const) {
      const p = await timed(deno, [
        "run",
        "-A",
        "--quiet",
        "--frozen",
        READ_OBJECTS,
        "s3",
        `${wPrefix}app/`,
        String(concurrency),
      ]);
      runs[who].push(asRun(who, p));
      if (p.ok) plainBytes = Number(p.stdout.trim().split(" ")[1]);
    }
  }
  const load1 = loadAverage()[0];
  for (const [who, list] of Object.entries(runs)) {
    const failed = list.find((r) => !r.ok);
    if (failed) ctx.log(`restore: ${who} failed: ${failed.error}`);
  }
  const walsyncIdentical = (await new Deno.Command("cmp", { args: ["-s", wDb, wOut] }).output()).code === 0;
  const source = await contentDigest(lDb);
  const restored = await contentDigest(lOut).catch(() => ({ rows: -1, digest: "", integrity: "missing" }));
  const result: RestoreSideBySide = {
    addedMiB,
    transactions,
    databaseBytes,
    rows,
    objects,
    walsyncSegments,
    runs,
    best: Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, medianRun(v)])),
    correct: {
      walsyncIdentical,
      litestreamIntegrity: restored.integrity,
      litestreamSameContent: restored.rows === source.rows && restored.digest === source.digest &&
        source.rows === rows,
    },
    plainBytes,
    load: [load0, load1],
  };
  await removeSub(ctx, sub);
  await Deno.remove(dir, { recursive: true }).catch(() => {});

  const table = restoreTable(result);
  ctx.details.restore = { ...result, table };
  ctx.extraMarkdown.push(
    "### Latest restore side by side with Litestream 0.3.13 (figure 9)\n\n" +
      `One database: ${START_MIB} MiB, then ${addedMiB} MiB more in ${transactions} transactions 1 s apart ` +
      `while both tools replicated it (sync interval 1 s); ${num(databaseBytes / 1e6)} MB, ${rows} rows; ` +
      `walsync restored a snapshot and ${
        walsyncSegments ?? "?"
      } segment(s). Restores straight from RGW, one ` +
      `at a time, alternating, median of ${runsEach}; times and peak RSS by /usr/bin/time, process start ` +
      `included. Load average ${load0.toFixed(2)} → ${load1.toFixed(2)} (shared machine).\n\n` + table,
  );
  const mb = databaseBytes / 1e6;
  const [w, l, p8] = [result.best.walsync, result.best.litestream, result.best["plain GET ×8"]];
  const secs = (r: RestoreRun | null) => r?.seconds ?? null;
  const mbps = (r: RestoreRun | null) => (r ? mb / r.seconds : null);
  return [
    {
      figure: "9",
      what: `latest restore of a ${num(mb)} MB database (${walsyncSegments ?? "?"} segments) from S3`,
      value: secs(w),
      unit: "s",
      reference: { what: "Litestream 0.3.13 restore", value: secs(l), unit: "s" },
      ratio: ratio(secs(w), secs(l)),
      goal: { text: "as fast as Litestream", met: w && l ? w.seconds <= l.seconds : null },
      note: walsyncIdentical ? undefined : "walsync's restore was NOT byte-identical to the source",
    },
    {
      figure: "9",
      what: "latest restore throughput vs plain parallel GETs of the same objects",
      value: mbps(w),
      unit: "MB/s",
      reference: {
        what: "s3-lite-client, 8 GETs in flight (MB of database / s)",
        value: mbps(p8),
        unit: "MB/s",
      },
      ratio: ratio(mbps(w), mbps(p8)),
      goal: { text: "≥ 80 % of plain GETs", met: w && p8 ? mbps(w)! >= 0.8 * mbps(p8)! : null },
    },
    {
      figure: "9",
      what: "latest restore: peak RSS",
      value: w?.peakRssMB ?? null,
      unit: "MB",
      reference: { what: "Litestream 0.3.13", value: l?.peakRssMB ?? null, unit: "MB" },
      ratio: ratio(w?.peakRssMB ?? null, l?.peakRssMB ?? null),
    },
  ];
}

/** Figure 9: latest restore, walsync next to Litestream and plain GETs. */
export const restoreModule: BenchModule = { name: "restore", figures: ["9"], run: measure };
