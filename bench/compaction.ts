/**
 * Compaction benchmark (issue #10, docs/design.md §11.1). Generates HOURS (default 24) of one-second
 * history of a real SQLite database (a 64 MiB table, then one commit per second: an append, and every
 * tenth second an update of a random old row; real WAL frames captured from SQLite's own -wal file,
 * hourly snapshots at a TRUNCATE checkpoint), written straight into a file:// store's layout. While it
 * generates, compaction runs every 30 s of the simulated clock (levels 30 s, 5 min, 1 h; fine history
 * 1 h) through a request-counting store: the requests it makes per day are reported next to the
 * 86,400 sync PUTs. Then it measures a latest restore (objects read, time) against a restore of the
 * newest snapshot alone, on file:// and on RGW (the compacted store copied there object by object).
 *
 * usage: deno run -A bench/compaction.ts [HOURS]   (RGW part when WALSYNC_TEST_S3_ENDPOINT is set)
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { formMetadata } from "../src/codec/codec.ts";
import { compactDatabase } from "../src/compact/compact.ts";
import { restoreCommand } from "../src/commands/restore.ts";
import { segmentKey, snapshotKey } from "../src/layout.ts";
import { configureLog } from "../src/log.ts";
import { encodeSegmentMeta, encodeSnapshotMeta } from "../src/metadata.ts";
import { openStore } from "../src/storage/open.ts";
import { bytesSource } from "../src/storage/source.ts";
import type { ByteSource } from "../src/storage/source.ts";
import type { ListedObject, Store } from "../src/storage/store.ts";
import { type Checksum, parseWalHeader, WAL_FRAME_HEADER_SIZE, WAL_HEADER_SIZE } from "../src/wal.ts";

const NAME = "bench";
const PAGE = 4096;
const HOURS = Number(Deno.args[0] ?? 24);
const PASS_MS = 30_000;

/** Requests by operation; a LIST call counts one request per 1,000 keys it returned (S3 pages). */
class Counted implements Store {
  counts: Record<string, number> = { PUT: 0, GET: 0, HEAD: 0, LIST: 0, DELETE: 0 };
  get url() {
    return this.inner.url;
  }
  get codec() {
    return this.inner.codec;
  }
  constructor(readonly inner: Store) {}
  put(key: string, body: ByteSource, metadata: Record<string, string>, md5?: string) {
    this.counts.PUT++;
    return this.inner.put(key, body, metadata, md5);
  }
  putSmall(...a: Parameters<Store["putSmall"]>) {
    this.counts.PUT++;
    return this.inner.putSmall(...a);
  }
  get(key: string) {
    this.counts.GET++;
    return this.inner.get(key);
  }
  head(key: string) {
    this.counts.HEAD++;
    return this.inner.head(key);
  }
  async *list(prefix: string, startAfter?: string): AsyncIterable<ListedObject> {
    let n = 0;
    this.counts.LIST++;
    for await (const e of this.inner.list(prefix, startAfter)) {
      if (++n % 1000 === 0) this.counts.LIST++;
      yield e;
    }
  }
  delete(key: string) {
    this.counts.DELETE++;
    return this.inner.delete(key);
  }
  deleteMany(keys: string[]) {
    this.counts.DELETE++;
    return this.inner.deleteMany(keys);
  }
}

/** Writes an object and its sidecar the way FileStore does (no fsync: a benchmark), stored as is. */
function writeObject(dir: string, key: string, bytes: Uint8Array, metadata: Record<string, string>) {
  const path = join(dir, key);
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  const form = formMetadata({
    compression: "none",
    encrypted: false,
    keyId: null,
    storedLength: bytes.byteLength,
    contentSha256: sha256,
    contentLength: bytes.byteLength,
  });
  Deno.writeFileSync(path, bytes);
  Deno.writeTextFileSync(
    `${path}.meta.json`,
    JSON.stringify({ size: bytes.byteLength, metadata: { ...metadata, ...form, sha256 } }),
  );
}

/** Reads the frames SQLite appended to the WAL since the last call, as one segment's content and metadata. */
class WalTail {
  #offset = 0;
  #header: ReturnType<typeof parseWalHeader> = null;
  #checksum: Checksum = [0, 0];
  #frame = 0;
  constructor(readonly path: string) {}
  /** Position after the last frame read (for a snapshot taken there). */
  position() {
    return this.#header
      ? { salt1: this.#header.salt1, salt2: this.#header.salt2, frame: this.#frame, checksum: this.#checksum }
      : null;
  }
  next(index: number): { bytes: Uint8Array; meta: Record<string, string> } {
    const all = Deno.readFileSync(this.path);
    if (all.byteLength < this.#offset || this.#offset === 0) {
      this.#header = parseWalHeader(all.subarray(0, WAL_HEADER_SIZE));
      if (!this.#header) throw new Error("no WAL header");
      this.#offset = WAL_HEADER_SIZE;
      this.#checksum = this.#header.checksum;
      this.#frame = 0;
    }
    const bytes = all.slice(this.#offset);
    const frameSize = WAL_FRAME_HEADER_SIZE + PAGE;
    const count = bytes.byteLength / frameSize;
    if (!Number.isInteger(count) || count === 0) throw new Error(`odd WAL tail: ${bytes.byteLength} bytes`);
    const view = new DataView(bytes.buffer);
    const last = (count - 1) * frameSize;
    const after: Checksum = [view.getUint32(last + 16), view.getUint32(last + 20)];
    const h = this.#header!;
    const meta = encodeSegmentMeta({
      index,
      pageSize: PAGE,
      magic: h.magic,
      checkpointSeq: h.checkpointSeq,
      salt1: h.salt1,
      salt2: h.salt2,
      firstFrame: this.#frame + 1,
      frameCount: count,
      before: this.#checksum,
      after,
      commitSize: view.getUint32(last + 4),
    });
    this.#offset += bytes.byteLength;
    this.#frame += count;
    this.#checksum = after;
    return { bytes, meta };
  }
  /** After a TRUNCATE checkpoint the next write starts a new WAL (salt-1 + 1). */
  restarted() {
    this.#offset = 0;
  }
}

async function generate(root: string, store: Counted, t0: number) {
  const dir = `${root}/store`;
  Deno.mkdirSync(`${dir}/${NAME}/snapshots`, { recursive: true });
  Deno.mkdirSync(`${dir}/${NAME}/wal`, { recursive: true });
  const dbPath = `${root}/source.db`;
  const db = new DatabaseSync(dbPath);
  db.exec(
    `PRAGMA page_size=${PAGE}; PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0; PRAGMA synchronous=OFF;`,
  );
  db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)");
  db.exec(
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 160000) INSERT INTO t(v) SELECT randomblob(380) FROM c",
  );
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  const wal = new WalTail(`${dbPath}-wal`);
  const insert = db.prepare("INSERT INTO t(v) VALUES (randomblob(120))");
  const update = db.prepare("UPDATE t SET v = randomblob(380) WHERE id = ?");
  let segments = 0;
  const cache = new Map(); // as the background compactor of watch keeps it between passes
  const snapshot = (time: number) => {
    db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    const position = wal.position();
    wal.restarted();
    const image = Deno.readFileSync(dbPath);
    const meta = encodeSnapshotMeta({
      pageSize: PAGE,
      pageCount: image.byteLength / PAGE,
      position,
      segmentsBefore: segments,
    });
    writeObject(dir, snapshotKey(NAME, 1, time), image, meta);
  };
  snapshot(t0);
  const seconds = HOURS * 3600;
  let started = performance.now();
  let compactMs = 0;
  for (let s = 1; s <= seconds; s++) {
    db.exec("BEGIN");
    insert.run();
    if (s % 10 === 0) update.run(1 + Math.floor(Math.random() * 160000));
    db.exec("COMMIT");
    const { bytes, meta } = wal.next(segments);
    writeObject(dir, segmentKey(NAME, 1, t0 + s * 1000), bytes, meta);
    segments++;
    if (s % 3600 === 0 && s < seconds) snapshot(t0 + s * 1000 + 100);
    if (s % (PASS_MS / 1000) === 0) {
      const c0 = performance.now();
      await compactDatabase(store, NAME, { now: t0 + s * 1000 + 200, cache });
      compactMs += performance.now() - c0;
    }
    if (s % 3600 === 0) {
      console.error(
        `hour ${s / 3600}: ${((performance.now() - started) / 1000).toFixed(1)} s (compaction ${
          (compactMs / 1000).toFixed(1)
        } s)`,
      );
      started = performance.now();
      compactMs = 0;
    }
  }
  const hint = new TextEncoder().encode(JSON.stringify({ generation: 1, nextSegmentIndex: segments }));
  Deno.writeFileSync(`${dir}/${NAME}/state.json`, hint);
  Deno.writeTextFileSync(
    `${dir}/${NAME}/state.json.meta.json`,
    JSON.stringify({
      size: hint.byteLength,
      metadata: {
        sha256: createHash("sha256").update(hint).digest("hex"),
      },
    }),
  );
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  db.close();
  return { dbPath, segments };
}

/** Restores latest and at the newest snapshot's time; objects read (GET) and median time of 3. */
async function measureRestores(label: string, store: Store, root: string, source: string) {
  const newest = [];
  for await (const e of store.list(`${NAME}/snapshots/`)) newest.push(e.key);
  const snapshotTime = /-(\d{17})\.db$/.exec(newest.sort().at(-1)!)![1];
  const iso = snapshotTime.replace(/^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d{3})$/, "$1-$2-$3T$4:$5:$6.$7Z");
  const rows: string[] = [];
  const results: Record<string, { ms: number; gets: number; detail: string }> = {};
  for (
    const [what, pit] of [["newest snapshot alone", Date.parse(iso)], ["latest state", undefined]] as const
  ) {
    const times: number[] = [];
    let gets = 0;
    let detail = "";
    for (let i = 0; i < 3; i++) {
      const counted = new Counted(store);
      const t = performance.now();
      const r = await restoreCommand(counted, NAME, {
        output: `${root}/${label}-out.db`,
        force: true,
        pointInTime: pit,
      });
      times.push(performance.now() - t);
      gets = counted.counts.GET;
      detail = `1 snapshot + ${r.pageSets} page sets + ${r.segments} segments`;
    }
    times.sort((a, b) => a - b);
    results[what] = { ms: times[1], gets, detail };
  }
  const same =
    createHash("sha256").update(Deno.readFileSync(`${root}/${label.replace(/\W/g, "")}-out.db`)).digest(
      "hex",
    ) ===
      createHash("sha256").update(Deno.readFileSync(source)).digest("hex");
  const latest = results["latest state"];
  const alone = results["newest snapshot alone"];
  rows.push(
    `| ${label} | latest state | ${latest.gets} (${latest.detail}) | ${latest.ms.toFixed(0)} ms | ${
      (latest.ms / alone.ms).toFixed(2)
    } × | ${same ? "byte-identical" : "DIFFERS"} |`,
    `| ${label} | newest snapshot alone | ${alone.gets} | ${alone.ms.toFixed(0)} ms | 1.00 × | |`,
  );
  return rows;
}

/** Copies every object (and its metadata) of the file:// store to `target`, 16 at a time. */
async function copyStore(from: Store, target: Store) {
  const keys: string[] = [];
  for await (const e of from.list(`${NAME}/`)) keys.push(e.key);
  let next = 0;
  const worker = async () => {
    while (next < keys.length) {
      const key = keys[next++];
      const data = await from.get(key);
      const bytes = new Uint8Array(await new Response(data.body).arrayBuffer());
      await target.put(key, bytesSource(bytes), data.metadata);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  return keys.length;
}

if (import.meta.main) {
  configureLog({ quiet: true });
  const base = Deno.statSync("/dev/shm").isDirectory ? "/dev/shm" : undefined;
  const root = Deno.makeTempDirSync({ dir: base, prefix: "walsync-compaction-" });
  const url = `file://${root}/store`;
  const store = openStore(url, { compression: "none" });
  const counted = new Counted(store);
  const t0 = Date.now() - HOURS * 3_600_000 - 60_000;
  const genStart = performance.now();
  const { dbPath, segments } = await generate(root, counted, t0);
  console.error(
    `generated ${segments} segments with compaction in ${
      ((performance.now() - genStart) / 1000).toFixed(0)
    } s`,
  );
  const perDay = (n: number) => Math.round((n * 24) / HOURS);
  const stored = { segments: 0, pages: [0, 0, 0], snapshots: 0, bytes: 0 };
  for await (const e of store.list(`${NAME}/`)) {
    stored.bytes += e.size;
    if (e.key.includes("/wal/")) stored.segments++;
    else if (e.key.includes("/snapshots/")) stored.snapshots++;
    else if (e.key.includes("/pages/")) stored.pages[Number(/-(\d)-\d{10}-/.exec(e.key)![1]) - 1]++;
  }
  console.log(`## Compaction: ${HOURS} h of one-second history (${segments} segments, one commit each)\n`);
  console.log(
    `Stored after compaction: ${stored.snapshots} snapshots, ${stored.segments} segments (fine history 1 h), ` +
      `page sets L1/L2/L3 ${stored.pages.join("/")}; ${(stored.bytes / 1e6).toFixed(1)} MB\n`,
  );
  console.log(
    "| requests per database per day | PUT | GET | HEAD | LIST (pages of 1,000) | DELETE (multi-object) |",
  );
  console.log("|---|---:|---:|---:|---:|---:|");
  console.log(`| sync (one segment per second) | 86400 | 0 | 86400 | 0 | 0 |`);
  const c = counted.counts;
  console.log(
    `| compaction (a pass per 30 s) | ${perDay(c.PUT)} | ${perDay(c.GET)} | ${perDay(c.HEAD)} | ${
      perDay(c.LIST)
    } | ${perDay(c.DELETE)} |\n`,
  );
  console.log("| store | restore | objects read (GET) | time (median of 3) | vs snapshot alone | result |");
  console.log("|---|---|---|---:|---:|---|");
  for (const row of await measureRestores("file", store, root, dbPath)) console.log(row);
  const endpoint = Deno.env.get("WALSYNC_TEST_S3_ENDPOINT");
  if (endpoint) {
    const prefix = `bench-compaction-${crypto.randomUUID().slice(0, 8)}`;
    const s3 = openStore(`s3://${Deno.env.get("WALSYNC_TEST_BUCKET") ?? "walsync-test"}/${prefix}`, {
      endpoint,
      compression: "none",
    });
    const copyStart = performance.now();
    const n = await copyStore(store, s3);
    console.error(`copied ${n} objects to RGW in ${((performance.now() - copyStart) / 1000).toFixed(0)} s`);
    for (const row of await measureRestores("RGW", s3, root, dbPath)) console.log(row);
    const keys: string[] = [];
    for await (const e of s3.list(`${NAME}/`)) keys.push(e.key);
    for (let i = 0; i < keys.length; i += 1000) await s3.deleteMany(keys.slice(i, i + 1000));
  }
  Deno.removeSync(root, { recursive: true });
}
