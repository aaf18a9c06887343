/**
 * Diagnostic (not part of `deno task bench`): where the memory of one watched database goes.
 *
 * usage: deno run -A --v8-flags=--expose-gc bench/diag_memory.ts [COUNT] [--sqlite-only]
 *
 * Makes COUNT (default 500) small WAL databases, then in this process either starts one walsync
 * replica per database (src/watch/replica.ts, what `watch` runs; file:// store in RAM; three sync
 * rounds) or, with --sqlite-only, only opens one read-only node:sqlite connection per database
 * holding a read transaction. After forced garbage collections it prints per database: RSS, its
 * anonymous (split: opening the replica, the rest), file-backed and shared-memory parts (/proc/self/status; the databases live in
 * /dev/shm, so SQLite's -shm mappings count as shmem), V8's used and total heap, external memory.
 * One-off costs (code paged in on first use) are spread over COUNT: use a few hundred.
 * "heap total" far above "heap used" means the V8 heap grew (young generation) under allocation
 * churn rather than holding live objects; try --v8-flags=--expose-gc,--max-semi-space-size=1.
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { fileURLToPath } from "node:url";
import { WATCH_DEFAULTS } from "../src/commands/watch.ts";
import { configureLog } from "../src/log.ts";
import { reclaimMemory } from "../src/memory_reclaim.ts";
import { FileStore } from "../src/storage/file.ts";
import { Replica } from "../src/watch/replica.ts";

const MAKE_DBS = fileURLToPath(new URL("./lib/make_dbs.py", import.meta.url));
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --v8-flags=--expose-gc");

/** RSS and its parts, KiB. */
function status() {
  const text = Deno.readTextFileSync("/proc/self/status");
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text)![1]);
  return { rss: field("VmRSS"), anon: field("RssAnon"), file: field("RssFile"), shmem: field("RssShmem") };
}

/** Collects and trims as `watch`'s reclaimer does, so only live memory is left. */
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) gc!();
  await new Promise((r) => setTimeout(r, 1000));
  await reclaimMemory();
}

const count = Number(Deno.args.find((a) => /^\d+$/.test(a)) ?? 500);
const sqliteOnly = Deno.args.includes("--sqlite-only");
const dir = await Deno.makeTempDir({ dir: "/dev/shm", prefix: "walsync-diag-" });
try {
  const made = await new Deno.Command("python3", { args: [MAKE_DBS, dir, String(count)], stdout: "piped" })
    .output();
  const paths = new TextDecoder().decode(made.stdout).trim().split("\n");
  configureLog({ quiet: true });
  await settle();
  const s0 = status();
  const m0 = Deno.memoryUsage();
  const keep: unknown[] = [];
  /** After opening the replicas' connections, before their first snapshot and syncs. */
  let afterOpen: ReturnType<typeof status> | null = null;
  if (sqliteOnly) {
    for (const path of paths) {
      const db = new DatabaseSync(path, { readOnly: true });
      db.exec("BEGIN");
      db.prepare("SELECT count(*) FROM sqlite_schema").get();
      keep.push(db);
    }
  } else {
    const store = new FileStore(`${dir}/backup`);
    const replicas = paths.map((p, i) =>
      new Replica(p, `db${i}`, store, { ...WATCH_DEFAULTS, snapshotIntervalMs: 3_600_000 })
    );
    for (const r of replicas) await r.open();
    await settle();
    afterOpen = status();
    for (const r of replicas) await r.start();
    for (let round = 0; round < 3; round++) for (const r of replicas) await r.sync();
    keep.push(...replicas);
  }
  await settle();
  const s1 = status();
  const m1 = Deno.memoryUsage();
  const per = (a: number, b: number) => Number(((b - a) / count).toFixed(1));
  console.log(JSON.stringify({
    mode: sqliteOnly ? "node:sqlite only" : "walsync replicas",
    databases: count,
    kibPerDatabase: {
      rss: per(s0.rss, s1.rss),
      anon: per(s0.anon, s1.anon),
      file: per(s0.file, s1.file),
      shmem: per(s0.shmem, s1.shmem),
      v8HeapUsed: per(m0.heapUsed / 1024, m1.heapUsed / 1024),
      v8HeapTotal: per(m0.heapTotal / 1024, m1.heapTotal / 1024),
      external: per(m0.external / 1024, m1.external / 1024),
    },
    // Of the anonymous memory: opening (the node:sqlite read connection and descriptors) vs the rest.
    ...(afterOpen
      ? { anonKibPerDatabase: { open: per(s0.anon, afterOpen.anon), rest: per(afterOpen.anon, s1.anon) } }
      : {}),
  }));
} finally {
  await Deno.remove(dir, { recursive: true });
}
