/**
 * Memory and throughput benchmark of `walsync snapshot` and `walsync restore` on a large database.
 *
 * usage: deno run -A bench/memory.ts [--size-mib N] [--out bench/out/memory.json]   (default 1024 MiB)
 *
 * What it measures (the claim under test: peak RSS stays within a few tens of MB of idle RSS,
 * whatever the database size, i.e. nothing buffers a whole database or WAL in memory):
 * 1. Builds a ~N MiB SQLite database in WAL mode in a temp dir, in a separate python3 process:
 *    random 4000-byte blobs (about one row per 4 KiB page) inserted in big transactions, with the
 *    last ~50 MiB of changes left only in the -wal file (wal_autocheckpoint=0, then os._exit(0) so
 *    that closing the connection cannot checkpoint).
 * 2. Idle RSS: the peak RSS of a walsync process that does almost nothing (`list` of an empty
 *    file:// dir) and, for reference, of an idle `deno run` (best of a few runs each).
 * 3. For each backend (a file:// temp dir and s3://$WALSYNC_TEST_BUCKET/bench-<random>): runs
 *    `snapshot` then `restore` as separate processes under `/usr/bin/time -f "%M %e"` (peak RSS in
 *    KiB, wall seconds), then checkpoints the source (`PRAGMA wal_checkpoint(TRUNCATE)`, only after
 *    both snapshots) and checks that each restored file is byte-identical to it (`cmp`).
 * 4. Prints a Markdown table to stdout and writes everything as JSON to --out. Temp files and the
 *    S3 objects it created are removed at the end (also on failure).
 *
 * Units: sizes and RSS in MiB (2^20 bytes), throughput in MiB/s of database image. S3 settings come
 * from the environment (AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, ...; see scripts/rgw.sh env).
 * @module
 */
import { parseArgs } from "node:util";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));
const MIB = 1024 * 1024;
/** How much of the database is written last and left only in the WAL. */
const WAL_TAIL_MIB = 50;

/** The outcome of a command run under `/usr/bin/time`. */
interface Timed {
  /** The command exited 0. */
  ok: boolean;
  stdout: string;
  /** The last line of stderr when the command failed. */
  error?: string;
  peakRssMiB: number;
  seconds: number;
}

/** One row of the result table. */
interface Measurement {
  backend: "file" | "s3";
  operation: "snapshot" | "restore";
  /** Size of the database image (null if the command failed). */
  sizeMiB: number | null;
  seconds: number;
  mibPerSecond: number | null;
  peakRssMiB: number;
  peakMinusIdleMiB: number;
  /** Snapshots only: size of the source's -wal file just before the snapshot. */
  sourceWalMiB?: number;
  /** "ok"; for restores "identical" or "DIFFERENT" (vs. the checkpointed source); or "FAILED". */
  check: "ok" | "identical" | "DIFFERENT" | "FAILED";
  /** Why the command failed (last line of its stderr). */
  error?: string;
}

/** Everything written to the JSON output. */
interface Report {
  date: string;
  deno: string;
  requestedSizeMiB: number;
  dbFileMiB: number;
  walFileMiB: number;
  idleWalsyncRssMiB: number;
  idleDenoRssMiB: number;
  results: Measurement[];
}

/** Builds the database: bulk part checkpointed into the main file, the last part only in the WAL. */
const BUILD_DB_PY = `
import os, sqlite3, sys
path, total_mib, tail_mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ROW, BATCH = 4000, 2000
rows = lambda mib: max(1, mib * 1024 * 1024 // 4096)
con = sqlite3.connect(path, isolation_level=None)
con.execute("PRAGMA journal_mode=WAL")
con.execute("PRAGMA synchronous=OFF")
con.execute("CREATE TABLE blobs(id INTEGER PRIMARY KEY, data BLOB NOT NULL)")
def insert(n):
    for start in range(0, n, BATCH):
        con.execute("BEGIN")
        con.executemany("INSERT INTO blobs(data) VALUES (?)",
                        ((os.urandom(ROW),) for _ in range(min(BATCH, n - start))))
        con.execute("COMMIT")
insert(rows(total_mib - tail_mib))
con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
con.execute("PRAGMA wal_autocheckpoint=0")
insert(rows(tail_mib))
sys.stdout.flush()
os._exit(0)
`;

/** Parses the command line. */
function parseOptions(): { sizeMiB: number; out: string } {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      "size-mib": { type: "string", default: "1024" },
      out: { type: "string", default: "bench/out/memory.json" },
    },
  });
  const sizeMiB = Number(values["size-mib"]);
  if (!Number.isInteger(sizeMiB) || sizeMiB < 8) throw new Error("--size-mib must be an integer >= 8");
  return { sizeMiB, out: resolve(values.out) };
}

/** Runs a program; throws with its stderr unless it exits 0; returns stdout. */
async function run(cmd: string, args: string[], env?: Record<string, string>): Promise<string> {
  const out = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed (${out.code}): ${dec.decode(out.stderr)}`);
  }
  return dec.decode(out.stdout);
}

/**
 * Runs a program under `/usr/bin/time`; returns its stdout, peak RSS and wall time. A failing
 * program is reported (ok false), not thrown, so that the other measurements still run.
 */
async function timed(cmd: string, args: string[]): Promise<Timed> {
  const timeFile = await Deno.makeTempFile({ prefix: "walsync-bench-time-" });
  try {
    const out = await new Deno.Command("/usr/bin/time", {
      args: ["-f", "%M %e", "-o", timeFile, cmd, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    // On failure, time(1) writes "Command exited with non-zero status N" before the format line.
    const [kib, seconds] = (await Deno.readTextFile(timeFile)).trim().split(/\s+/).slice(-2).map(Number);
    const dec = new TextDecoder();
    const error = out.success ? undefined : firstErrorLine(dec.decode(out.stderr));
    return { ok: out.success, stdout: dec.decode(out.stdout), error, peakRssMiB: kib / 1024, seconds };
  } finally {
    await Deno.remove(timeFile);
  }
}

/** The first line of `stderr` that mentions an error (else its last line), for the report. */
function firstErrorLine(stderr: string): string {
  const lines = stderr.trim().split("\n");
  return lines.find((l) => /error/i.test(l)) ?? lines.at(-1) ?? "";
}

/** Runs `walsync ARGS` (this checkout's main.ts, with this Deno) under `/usr/bin/time`. */
function timedWalsync(args: string[]): Promise<Timed> {
  return timed(Deno.execPath(), ["run", "-A", "--quiet", MAIN, ...args]);
}

/** The lowest peak RSS (MiB) of `runs` runs of `fn` (the first run also warms caches). */
async function bestRss(runs: number, fn: () => Promise<Timed>): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < runs; i++) best = Math.min(best, (await fn()).peakRssMiB);
  return best;
}

/** Size of a file in MiB, 0 if it does not exist. */
async function fileMiB(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size / MIB;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return 0;
    throw e;
  }
}

/** Creates the ~`sizeMiB` WAL-mode database at `path` (see {@link BUILD_DB_PY}). */
async function buildDatabase(path: string, sizeMiB: number): Promise<void> {
  const tail = Math.min(WAL_TAIL_MIB, Math.floor(sizeMiB / 4));
  await run("python3", ["-c", BUILD_DB_PY, path, String(sizeMiB), String(tail)]);
}

/**
 * Measures one backend: snapshot of `db`, then (if it worked) restore into `restoreDir`.
 * Returns the rows and the restored file (null if there is none).
 */
async function benchBackend(
  backend: Measurement["backend"],
  url: string,
  db: string,
  restoreDir: string,
  idleMiB: number,
): Promise<{ snapshot: Measurement; restore?: Measurement; restored: string | null }> {
  const walMiB = await fileMiB(`${db}-wal`);
  const snap = await timedWalsync(["snapshot", db, "-b", url, "--json"]);
  const snapshot = { ...measurement(backend, "snapshot", snap, idleMiB), sourceWalMiB: walMiB };
  if (!snap.ok) return { snapshot, restored: null };
  const restored = join(restoreDir, `${backend}-restored.db`);
  const rest = await timedWalsync(["restore", "bench", "-o", restored, "-b", url, "--json"]);
  return {
    snapshot,
    restore: measurement(backend, "restore", rest, idleMiB),
    restored: rest.ok ? restored : null,
  };
}

/** Builds a table row from a timed walsync run (size from its --json output). */
function measurement(
  backend: Measurement["backend"],
  operation: Measurement["operation"],
  t: Timed,
  idleMiB: number,
): Measurement {
  const sizeMiB = t.ok ? JSON.parse(t.stdout).size / MIB : null;
  return {
    backend,
    operation,
    sizeMiB,
    seconds: t.seconds,
    mibPerSecond: sizeMiB !== null && t.seconds > 0 ? sizeMiB / t.seconds : null,
    peakRssMiB: t.peakRssMiB,
    peakMinusIdleMiB: t.peakRssMiB - idleMiB,
    check: t.ok ? "ok" : "FAILED",
    error: t.error,
  };
}

/** True if the two files are byte-identical (`cmp`). */
async function identical(a: string, b: string): Promise<boolean> {
  const out = await new Deno.Command("cmp", { args: ["-s", a, b] }).output();
  return out.code === 0;
}

/** Deletes every object under `url` (an s3:// prefix) with the aws CLI. */
async function removeS3Prefix(url: string): Promise<void> {
  const endpoint = Deno.env.get("AWS_ENDPOINT_URL_S3") ?? Deno.env.get("AWS_ENDPOINT_URL");
  const region = Deno.env.get("AWS_REGION") ?? "us-east-1";
  const args = ["s3", "rm", `${url}/`, "--recursive", "--only-show-errors"];
  if (endpoint) args.push("--endpoint-url", endpoint);
  await run("aws", args, { AWS_DEFAULT_REGION: Deno.env.get("AWS_DEFAULT_REGION") ?? region });
}

/** Formats the results as a Markdown table. */
function markdownTable(report: Report): string {
  const f = (n: number | null, digits = 1) => n === null ? "-" : n.toFixed(digits);
  const lines = [
    "| backend | operation | size MiB | seconds | MiB/s | peak RSS MiB | peak - idle MiB | check |",
    "|---|---|---:|---:|---:|---:|---:|---|",
    ...report.results.map((r) =>
      `| ${r.backend} | ${r.operation} | ${f(r.sizeMiB)} | ${f(r.seconds, 2)} | ${f(r.mibPerSecond)} | ` +
      `${f(r.peakRssMiB)} | ${f(r.peakMinusIdleMiB)} | ${r.check} |`
    ),
    ...report.results.filter((r) => r.error !== undefined).map((r) =>
      `\n${r.backend} ${r.operation} failed: ${r.error}`
    ),
  ];
  return [
    `Database: ${f(report.dbFileMiB)} MiB main file + ${f(report.walFileMiB)} MiB WAL ` +
    `(requested ${report.requestedSizeMiB} MiB). Idle RSS: walsync list ${
      f(report.idleWalsyncRssMiB)
    } MiB, ` +
    `bare deno ${f(report.idleDenoRssMiB)} MiB.`,
    "",
    ...lines,
  ].join("\n");
}

/** Runs the whole benchmark; returns the report. */
async function benchmark(sizeMiB: number, work: string, s3Url: string): Promise<Report> {
  const db = join(work, "bench.db");
  const emptyDir = join(work, "empty");
  const fileBackup = join(work, "backup");
  const restoreDir = join(work, "restored");
  for (const d of [emptyDir, fileBackup, restoreDir]) await Deno.mkdir(d);

  console.error(`building a ${sizeMiB} MiB database in ${work} ...`);
  await buildDatabase(db, sizeMiB);
  const dbFileMiB = await fileMiB(db);
  const walFileMiB = await fileMiB(`${db}-wal`);

  console.error("measuring idle RSS ...");
  const idleWalsync = await bestRss(3, () => timedWalsync(["list", "-b", `file://${emptyDir}`, "--json"]));
  const idleDeno = await bestRss(
    3,
    () => timed(Deno.execPath(), ["eval", "await new Promise((r) => setTimeout(r, 500))"]),
  );

  const runs = [];
  for (const [backend, url] of [["file", `file://${fileBackup}`], ["s3", s3Url]] as const) {
    console.error(`${backend}: snapshot + restore via ${url} ...`);
    runs.push(await benchBackend(backend, url, db, restoreDir, idleWalsync));
  }

  await run("sqlite3", [db, "PRAGMA wal_checkpoint(TRUNCATE)"]);
  const results: Measurement[] = [];
  for (const { snapshot, restore, restored } of runs) {
    results.push(snapshot);
    if (!restore) continue;
    if (restored) restore.check = await identical(db, restored) ? "identical" : "DIFFERENT";
    results.push(restore);
  }

  return {
    date: new Date().toISOString(),
    deno: Deno.version.deno,
    requestedSizeMiB: sizeMiB,
    dbFileMiB,
    walFileMiB,
    idleWalsyncRssMiB: idleWalsync,
    idleDenoRssMiB: idleDeno,
    results,
  };
}

/** Entry point: benchmark, print the table, write the JSON, clean up. */
async function main(): Promise<void> {
  const { sizeMiB, out } = parseOptions();
  const bucket = Deno.env.get("WALSYNC_TEST_BUCKET") ?? "walsync-test";
  const s3Url = `s3://${bucket}/bench-${crypto.randomUUID().slice(0, 8)}`;
  const work = await Deno.makeTempDir({ prefix: "walsync-bench-" });
  let report: Report;
  try {
    report = await benchmark(sizeMiB, work, s3Url);
  } finally {
    await Deno.remove(work, { recursive: true });
    await removeS3Prefix(s3Url).catch((e) => console.error(`warning: S3 cleanup failed: ${e.message}`));
  }
  console.log(markdownTable(report));
  await Deno.mkdir(dirname(out), { recursive: true });
  await Deno.writeTextFile(out, JSON.stringify(report, null, 2) + "\n");
  console.error(`wrote ${out}`);
  if (report.results.some((r) => r.check === "DIFFERENT" || r.check === "FAILED")) Deno.exit(1);
}

if (import.meta.main) await main();
