/**
 * Figure 2 (second part): restore of a database that needs 10,000 WAL segments (1,000 with
 * --quick) replayed after its snapshot, in segments per second.
 *
 * Producing the segments: walsync's own replication code (src/watch/replica.ts, what `watch`
 * runs) is driven in this process in lock-step with a writer connection: commit one small
 * transaction, run one sync round, repeat until the replica has shipped N segments. The store is a
 * `file://` directory in RAM (/dev/shm), so this takes seconds instead of the ~15 ms a verified
 * PUT + HEAD costs per segment on RGW.
 *
 * Measured: `walsync restore` (every segment fetched, SHA-256 checked, frames verified, applied;
 * then integrity_check) of the whole chain from file://, compared with the source; and of the
 * snapshot plus the first 2,000 segments copied to S3 (with their metadata, by walsync's S3 store),
 * compared with the file:// restore at the same point in time. Restore fetches up to 16 segments
 * ahead (src/log/prefetch.ts) and applies them in order, so its reference is a plain process that
 * lists the same objects and reads them with 16 GETs in flight (s3-lite-client); the rate of one
 * GET at a time is reported too. Peak RSS of the long restore is shown next to the restore of the
 * large snapshot of bench/throughput.ts.
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseObjectKey } from "../src/layout.ts";
import { configureLog } from "../src/log.ts";
import { FileStore } from "../src/storage/file.ts";
import { openStore } from "../src/storage/open.ts";
import { bytesSource } from "../src/storage/upload.ts";
import { Replica } from "../src/watch/replica.ts";
import { WATCH_DEFAULTS } from "../src/commands/watch.ts";
import { type BenchContext, type BenchModule, ramDir, removeSub, s3Url } from "./lib/context.ts";
import { run, timed, timedWalsync } from "./lib/proc.ts";
import { ratio, type Row } from "./lib/report.ts";

const READ_OBJECTS = fileURLToPath(new URL("./lib/read_objects.ts", import.meta.url));
const NAME = "seg";

/** What producing the segments took. */
interface Produced {
  segments: number;
  commits: number;
  /** Sync rounds right after a commit that shipped nothing (the commit went out with the next). */
  emptySyncs: number;
  checkpoints: number;
  seconds: number;
  walBytes: number;
}

/**
 * Commits and syncs in lock-step until the replica has shipped `target` segments after its
 * snapshot; stores into `store` (a FileStore). Returns counts; leaves the source checkpointed.
 */
async function produceSegments(db: string, store: FileStore, target: number): Promise<Produced> {
  const writer = new DatabaseSync(db);
  writer.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF");
  writer.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)");
  writer.exec(
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000) " +
      "INSERT INTO t(v) SELECT randomblob(200) FROM c",
  );
  const replica = new Replica(db, NAME, store, {
    ...WATCH_DEFAULTS,
    snapshotIntervalMs: Number.MAX_SAFE_INTEGER,
  });
  const insert = writer.prepare("INSERT INTO t(v) VALUES (randomblob(200))");
  const started = performance.now();
  let commits = 0;
  let emptySyncs = 0;
  try {
    await replica.start();
    while (replica.stats.segments < target) {
      insert.run();
      commits++;
      const before = replica.stats.segments;
      await replica.sync();
      if (replica.stats.segments === before) emptySyncs++;
      if (commits > 3 * target) {
        throw new Error(`only ${replica.stats.segments} segments after ${commits} commits`);
      }
    }
    await replica.stop();
  } finally {
    writer.close(); // the last connection: checkpoints the WAL into the database file
  }
  let walBytes = 0;
  for await (const o of store.list(`${NAME}/wal/`)) walBytes += o.size;
  return {
    segments: replica.stats.segments,
    commits,
    emptySyncs,
    checkpoints: replica.stats.checkpoints,
    seconds: (performance.now() - started) / 1000,
    walBytes,
  };
}

/** Copies the objects `keys` of `from` (with their metadata) to the S3 backup `url`, `parallel` at a time. */
async function copyToS3(from: FileStore, keys: string[], url: string, parallel: number): Promise<void> {
  const to = openStore(url);
  let next = 0;
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < keys.length) {
      const key = keys[next++];
      const info = (await from.head(key))!;
      const bytes = await Deno.readFile(join(from.dir, key));
      await to.put(key, bytesSource(bytes), info.metadata);
    }
  }));
}

/** The snapshot and the first `count` segments of the chain in `store`, and the last one's time. */
async function chainStart(store: FileStore, count: number): Promise<{ keys: string[]; lastTime: number }> {
  const objects = [];
  for await (const o of store.list(`${NAME}/`)) {
    const parsed = parseObjectKey(o.key);
    if (parsed) objects.push(parsed);
  }
  const snapshot = objects.find((o) => o.kind === "snapshot")!;
  const segments = objects.filter((o) => o.kind === "segment").sort((a, b) => a.time - b.time).slice(
    0,
    count,
  );
  return { keys: [snapshot.key, ...segments.map((o) => o.key)], lastTime: segments.at(-1)!.time };
}

async function identical(a: string, b: string): Promise<boolean> {
  return (await new Deno.Command("cmp", { args: ["-s", a, b] }).output()).code === 0;
}

/** One timed `walsync restore` of NAME from `url`, compared with `expected`; segments per second. */
async function restore(url: string, output: string, expected: string, extra: string[] = []) {
  const t = await timedWalsync(["restore", NAME, "-o", output, "-b", url, "--json", ...extra]);
  if (!t.ok) {
    return {
      ok: false,
      error: t.error,
      seconds: t.seconds,
      segments: 0,
      rate: null,
      identical: false,
      peakRssMB: 0,
    };
  }
  const { segments } = JSON.parse(t.stdout) as { segments: number };
  const same = await identical(expected, output);
  return {
    ok: true,
    seconds: t.seconds,
    segments,
    rate: segments / t.seconds,
    identical: same,
    peakRssMB: t.peakRssMB,
  };
}

/** One timed plain read of every object; objects per second. */
async function plainRead(args: string[]) {
  const t = await timed(Deno.execPath(), ["run", "-A", "--quiet", "--frozen", READ_OBJECTS, ...args]);
  if (!t.ok) throw new Error(`plain read failed: ${t.error}`);
  const objects = Number(t.stdout.trim().split(" ")[0]);
  return { objects, seconds: t.seconds, rate: objects / t.seconds };
}

async function measure(ctx: BenchContext): Promise<Row[]> {
  if (!ctx.selected("2")) return [];
  const target = ctx.quick ? 1000 : 10_000;
  const s3Count = Math.min(target, 2000);
  const dir = await ramDir(ctx, "segments");
  const db = join(dir, "seg.db");
  const backupDir = join(dir, "backup");
  const store = new FileStore(backupDir);

  configureLog({ quiet: true }); // the replica's progress lines would drown the benchmark's
  ctx.log(`segments: producing ${target} segments with walsync's replica (file:// in RAM) ...`);
  const produced = await produceSegments(db, store, target);
  ctx.log(
    `segments: ${produced.segments} segments in ${produced.seconds.toFixed(1)} s; restoring from file:// ...`,
  );
  const fileUrl = `file://${backupDir}`;
  const fileRestore = await restore(fileUrl, join(dir, "restored-file.db"), db);
  const fileRef = await plainRead(["file", backupDir]);

  // S3: the snapshot and the first s3Count segments; the expected result is the file:// restore at
  // the last one's time (or the source itself when the whole chain is copied).
  ctx.log(`segments: copying the snapshot and ${s3Count} segments to S3 ...`);
  const sub = "segments";
  const url = s3Url(ctx, sub);
  const chain = await chainStart(store, s3Count);
  const copyStarted = performance.now();
  await copyToS3(store, chain.keys, url, 16);
  const copySeconds = (performance.now() - copyStarted) / 1000;
  let expected = db;
  if (s3Count < target) {
    expected = join(dir, "expected.db");
    const at = new Date(chain.lastTime).toISOString();
    await timedWalsync(["restore", NAME, "-o", expected, "-b", fileUrl, "--point-in-time", at]);
  }
  ctx.log(`segments: copied in ${copySeconds.toFixed(0)} s; restoring from S3 ...`);
  const s3Restore = await restore(url, join(dir, "restored-s3.db"), expected);
  const s3Ref = await plainRead(["s3", `${ctx.prefix}/${sub}/`, "1"]);
  const s3Parallel = await plainRead(["s3", `${ctx.prefix}/${sub}/`, "16"]);
  await removeSub(ctx, sub);
  await run("rm", ["-rf", dir]);

  ctx.details.segments = {
    target,
    s3Count,
    produced,
    copySeconds,
    fileRestore,
    fileRef,
    s3Restore,
    s3Ref,
    s3Parallel,
  };
  const label = (r: { ok: boolean; identical: boolean; error?: string }) =>
    r.ok ? (r.identical ? "byte-identical" : "NOT identical") : `FAILED: ${r.error}`;
  const bigRestoreRss = ctx.shared.restorePeakRssMB as number | undefined;
  return [
    {
      figure: "2",
      what: `restore replaying ${target} segments after the snapshot, file:// in RAM (${label(fileRestore)})`,
      value: fileRestore.rate,
      unit: "segments/s",
      reference: {
        what: "plain walk + read of the same files and sidecars",
        value: fileRef.rate,
        unit: "objects/s",
      },
      ratio: ratio(fileRestore.rate, fileRef.rate),
      note:
        `Segments made by walsync's replica in lock-step with a writer: ${produced.commits} commits for ` +
        `${produced.segments} segments, ${produced.checkpoints} checkpoints; ${produced.emptySyncs} sync rounds ` +
        `right after a commit shipped nothing (the WAL's size and mtime, in ms, looked unchanged).`,
    },
    {
      figure: "2",
      what: `restore replaying ${s3Count} segments after the snapshot, S3 (${label(s3Restore)})`,
      value: s3Restore.rate,
      unit: "segments/s",
      reference: {
        what: "plain list + GET of the same objects, 16 in flight",
        value: s3Parallel.rate,
        unit: "objects/s",
      },
      ratio: ratio(s3Restore.rate, s3Parallel.rate),
      note:
        `The first ${s3Count} segments of the chain (and its snapshot), copied to S3 with their metadata; the ` +
        `result is compared with the file:// restore at the last one's time. Restore fetches up to 16 ` +
        `segments ahead; one GET at a time, the same plain reads run at ${s3Ref.rate.toFixed(0)} objects/s.`,
    },
    {
      figure: "2",
      what: `restore replaying ${target} segments (file://): peak RSS`,
      value: fileRestore.peakRssMB,
      unit: "MB",
      reference: bigRestoreRss === undefined
        ? undefined
        : { what: "restore of the large snapshot from S3 (above)", value: bigRestoreRss, unit: "MB" },
      ratio: bigRestoreRss === undefined ? undefined : ratio(fileRestore.peakRssMB, bigRestoreRss),
      note: `From S3 (${s3Count} segments) the restore peaked at ${s3Restore.peakRssMB.toFixed(0)} MB.`,
    },
  ];
}

/** Figure 2, second part: restore of a long chain of segments. */
export const segmentsModule: BenchModule = { name: "segments", figures: ["2"], run: measure };
