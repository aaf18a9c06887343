/**
 * Where the time of a latest `walsync restore` goes (issue #8; figure 9 measures the whole): each
 * stage of the restore path timed on its own, on the objects of a real backup, in one process.
 *
 * usage: deno run -A bench/diag_restore.ts BACKUP_URL NAME [--endpoint URL] [--repeat N]
 *   (S3 settings from the environment, as `walsync restore`; the backup is only read)
 *
 * Stages, each over the latest snapshot and the segments after it, best of N (default 3):
 * 1. list: the store listing of NAME;
 * 2. GET serially (what restore does for objects > 1 MiB: src/log/prefetch.ts only HEADs them ahead
 *    and downloads each when its turn comes), and 8 GETs in flight, with walsync's own S3 store;
 * 3. from memory (no network): SHA-256 of the stored bytes, zstd decompression (src/codec/zstd.ts),
 *    SHA-256 of the content, WAL frame checks (verifyFrame: salts + checksum chain), page writes
 *    (pwrite through the same seek+write as src/restore/apply.ts's fileWriter), fsync;
 * 3b. what-if: the same page writes with runs of consecutive page numbers gathered into one write
 *    (up to 256 pages), a change item 2 of RESULTS.md proposes for apply.ts;
 * 4. the whole verified replay from memory: replaySnapshot/replaySegment of src/restore/apply.ts fed
 *    the bytes fetched in (2) (what restore does after the download);
 * 5. PRAGMA integrity_check on the result (node:sqlite, immutable, as restore does);
 * 5b. the reads before the first object: the prune mark (HEAD retention.json), state.json, and the
 *    listings of src/log/restore_history.ts, each timed alone;
 * 5c. what-if, not walsync's code path: the same verified replay (4), but every body fetched ahead
 *    whole, 8 GETs in flight, each object applied as soon as it and those before it are in (what
 *    src/log/prefetch.ts does today only for objects up to 1 MiB);
 * 6. a timeline of the real thing: src/commands/restore.ts's restoreCommand run once in this process
 *    on a store that notes when each HEAD/GET was issued, answered (headers) and its body read to
 *    the end; what is not download time in it is planning, CPU (decode, checks, writes) or the end.
 * Prints one JSON object (seconds per stage) and a Markdown table.
 * @module
 */
import { parseArgs } from "node:util";
import { DatabaseSync } from "node:sqlite";
import { openStore } from "../src/storage/open.ts";
import type { ObjectData, Store } from "../src/storage/store.ts";
import { decodeSegmentMeta, decodeSnapshotMeta, type SegmentMeta } from "../src/metadata.ts";
import { newSha256 } from "../src/hash.ts";
import { zstdDecompress } from "../src/codec/zstd.ts";
import { verifyFrame, WAL_FRAME_HEADER_SIZE } from "../src/wal.ts";
import { type BackupObject, parseObjectKey } from "../src/layout.ts";
import { restoreCommand } from "../src/commands/restore.ts";
import { readMark } from "../src/lifecycle/mark.ts";
import { readStateHint } from "../src/restore/state_hint.ts";
import { readRestoreHistory } from "../src/log/restore_history.ts";
import {
  fileWriter,
  replaySegment,
  replaySnapshot,
  type ReplayState,
  type SegmentObject,
  type SnapshotObject,
} from "../src/restore/apply.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: { endpoint: { type: "string" }, repeat: { type: "string", default: "3" } },
});
const [url, name] = positionals;
if (!url || !name) {
  console.error("usage: diag_restore.ts BACKUP_URL NAME [--endpoint URL] [--repeat N]");
  Deno.exit(2);
}
const repeat = Number(values.repeat);
const store: Store = openStore(url, { endpoint: values.endpoint });

/** Best (lowest) wall time of `repeat` runs of `fn`, seconds. */
async function best(fn: () => Promise<unknown> | unknown): Promise<number> {
  let lowest = Infinity;
  for (let i = 0; i < repeat; i++) {
    const t0 = performance.now();
    await fn();
    lowest = Math.min(lowest, (performance.now() - t0) / 1000);
  }
  return lowest;
}

/** 256 KiB chunks of `bytes`, as a download arrives. */
function* chunks(bytes: Uint8Array): Generator<Uint8Array> {
  for (let o = 0; o < bytes.byteLength; o += 256 * 1024) yield bytes.subarray(o, o + 256 * 1024);
}

async function* asyncChunks(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield* chunks(bytes);
}

async function getAll(key: string): Promise<{ data: ObjectData; bytes: Uint8Array }> {
  const data = await store.get(key);
  return { data, bytes: new Uint8Array(await new Response(data.body).arrayBuffer()) };
}

// 1. Listing, and the objects of the latest restore: the newest snapshot and the segments after it.
let listed: { key: string; size: number }[] = [];
const listS = await best(async () => {
  listed = [];
  for await (const o of store.list(`${name}/`)) listed.push(o);
});
const parsed = listed.map((o) => ({ ...o, object: parseObjectKey(o.key, o.size) })).filter((o) =>
  o.object !== null
);
const snapshots = parsed.filter((o) => o.object!.kind === "snapshot");
const snapshotEntry = snapshots.at(-1);
if (!snapshotEntry) throw new Error(`no snapshot of ${name} in ${url}`);
const snapshotInfo = await store.head(snapshotEntry.key);
const snapshotMeta = decodeSnapshotMeta(snapshotInfo!.metadata);
const segmentEntries: { key: string; size: number; object: BackupObject | null; meta: SegmentMeta }[] = [];
for (const o of parsed) {
  if (o.object!.kind !== "segment" || o.object!.generation !== snapshotEntry.object!.generation) continue;
  const meta = decodeSegmentMeta((await store.head(o.key))!.metadata);
  if (meta.index >= snapshotMeta.segmentsBefore) segmentEntries.push({ ...o, meta });
}
segmentEntries.sort((a, b) => a.meta.index - b.meta.index);
const keys = [snapshotEntry.key, ...segmentEntries.map((s) => s.key)];

// 2. Downloads.
let fetched: { data: ObjectData; bytes: Uint8Array }[] = [];
const serialS = await best(async () => {
  fetched = [];
  for (const key of keys) fetched.push(await getAll(key));
});
const parallelS = await best(async () => {
  let next = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < keys.length) await getAll(keys[next++]);
  }));
});
const storedBytes = fetched.reduce((n, f) => n + f.bytes.byteLength, 0);

// 3. The stages from memory.
let contents: Uint8Array[] = [];
const shaStoredS = await best(() => {
  for (const f of fetched) {
    const h = newSha256();
    for (const c of chunks(f.bytes)) h.update(c);
    h.digest("hex");
  }
});
const zstdS = await best(async () => {
  contents = [];
  for (const f of fetched) {
    const parts: Uint8Array[] = [];
    for await (const c of zstdDecompress(asyncChunks(f.bytes))) parts.push(c);
    const all = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
    let o = 0;
    for (const p of parts) {
      all.set(p, o);
      o += p.byteLength;
    }
    contents.push(all);
  }
});
const contentBytes = contents.reduce((n, c) => n + c.byteLength, 0);
const shaContentS = await best(() => {
  for (const c of contents) {
    const h = newSha256();
    for (const part of chunks(c)) h.update(part);
    h.digest("hex");
  }
});
const framesS = await best(() => {
  contents.slice(1).forEach((c, i) => {
    const meta: SegmentMeta = segmentEntries[i].meta;
    const size = WAL_FRAME_HEADER_SIZE + meta.pageSize;
    let seed = meta.before;
    for (let o = 0; o < c.byteLength; o += size) {
      const v = verifyFrame(c.subarray(o, o + size), meta, (meta.magic & 1) === 1, seed);
      if (!v) throw new Error(`frame check failed in ${segmentEntries[i].key}`);
      seed = v.checksum;
    }
  });
});
const out = await Deno.makeTempFile({ prefix: "walsync-diag-restore-" });
let frames = 0;
const writeS = await best(async () => {
  const file = await Deno.open(out, { write: true, truncate: true });
  const writer = fileWriter(file);
  await writer.writeAt(0, contents[0]);
  contents.slice(1).forEach((c, i) => {
    const pageSize = segmentEntries[i].meta.pageSize;
    const size = WAL_FRAME_HEADER_SIZE + pageSize;
    for (let o = 0; o < c.byteLength; o += size) {
      const pgno = new DataView(c.buffer, c.byteOffset + o, 4).getUint32(0);
      writer.writeAt((pgno - 1) * pageSize, c.subarray(o + WAL_FRAME_HEADER_SIZE, o + size));
      frames++;
    }
  });
  file.close();
});
frames /= repeat;

// 3b. What-if: the same page writes, consecutive page numbers gathered into one write (a run buffer).
let runs = 0;
const coalescedS = await best(async () => {
  const file = await Deno.open(out, { write: true, truncate: true });
  const writer = fileWriter(file);
  await writer.writeAt(0, contents[0]);
  runs = 0;
  for (const [i, c] of contents.slice(1).entries()) {
    const pageSize = segmentEntries[i].meta.pageSize;
    const size = WAL_FRAME_HEADER_SIZE + pageSize;
    const run = new Uint8Array(256 * pageSize);
    let first = 0;
    let count = 0;
    const flush = async () => {
      if (count) await writer.writeAt((first - 1) * pageSize, run.subarray(0, count * pageSize));
      if (count) runs++;
      count = 0;
    };
    for (let o = 0; o < c.byteLength; o += size) {
      const pgno = new DataView(c.buffer, c.byteOffset + o, 4).getUint32(0);
      if (count && (pgno !== first + count || count === 256)) await flush();
      if (!count) first = pgno;
      run.set(c.subarray(o + WAL_FRAME_HEADER_SIZE, o + size), count * pageSize);
      count++;
    }
    await flush();
  }
  file.close();
});

// 4. The verified replay of src/restore/apply.ts, fed from memory, then fsync.
const fromMemory: Store = new Proxy(store, {
  get(target, property) {
    if (property === "get") {
      return (key: string) => {
        const f = fetched[keys.indexOf(key)];
        return Promise.resolve({
          ...f.data,
          body: new ReadableStream<Uint8Array>({
            start(c) {
              for (const part of chunks(f.bytes)) c.enqueue(part);
              c.close();
            },
          }),
        });
      };
    }
    const value = Reflect.get(target, property);
    return typeof value === "function" ? value.bind(target) : value;
  },
});
let fsyncS = Infinity;
const replayS = await best(async () => {
  const file = await Deno.open(out, { write: true, read: true, truncate: true });
  const writer = fileWriter(file);
  let state: ReplayState = await replaySnapshot(fromMemory, snapshotEntry.object as SnapshotObject, writer);
  for (const s of segmentEntries) {
    state = await replaySegment(fromMemory, s.object as SegmentObject, state, writer);
  }
  await file.truncate(state.pageCount * state.pageSize);
  const t0 = performance.now();
  await file.sync();
  fsyncS = Math.min(fsyncS, (performance.now() - t0) / 1000);
  file.close();
});

// 5. integrity_check.
const integrityS = await best(() => {
  const db = new DatabaseSync(`file:${encodeURI(out)}?immutable=1`, { readOnly: true });
  const result = db.prepare("PRAGMA integrity_check").all();
  db.close();
  if ((result[0] as { integrity_check: string }).integrity_check !== "ok") throw new Error("not ok");
});

// 5b. The reads before the first object.
const markS = await best(() => readMark(store, name));
const hintS = await best(() => readStateHint(store, name));
const historyS = await best(() => readRestoreHistory(store, name));

// 5c. What-if: fetch every body ahead (8 in flight), apply in order as the bodies come in.
const aheadS = await best(async () => {
  const bodies = new Map<string, Promise<{ data: ObjectData; bytes: Uint8Array }>>();
  let next = 0;
  const lanes = Array.from({ length: 8 }, async () => {
    while (next < keys.length) {
      const key = keys[next++];
      const fetching = getAll(key);
      bodies.set(key, fetching);
      await fetching;
    }
  });
  const waitFor = async (key: string) => {
    while (!bodies.has(key)) await new Promise((r) => setTimeout(r, 1));
    return await bodies.get(key)!;
  };
  const ahead: Store = new Proxy(store, {
    get(target, property) {
      if (property === "get") {
        return async (key: string) => {
          const f = await waitFor(key);
          return {
            ...f.data,
            body: new ReadableStream<Uint8Array>({
              start(c) {
                for (const part of chunks(f.bytes)) c.enqueue(part);
                c.close();
              },
            }),
          };
        };
      }
      const value = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const file = await Deno.open(out, { write: true, read: true, truncate: true });
  const writer = fileWriter(file);
  let state: ReplayState = await replaySnapshot(ahead, snapshotEntry.object as SnapshotObject, writer);
  for (const s of segmentEntries) {
    state = await replaySegment(ahead, s.object as SegmentObject, state, writer);
  }
  await file.truncate(state.pageCount * state.pageSize);
  await file.sync();
  file.close();
  await Promise.all(lanes);
});

const databaseBytes = (await Deno.stat(out)).size;
await Deno.remove(out);

const result = {
  objects: keys.length,
  segments: segmentEntries.length,
  storedBytes,
  contentBytes,
  databaseBytes,
  framesWritten: frames,
  seconds: {
    list: listS,
    getSerial: serialS,
    getParallel8: parallelS,
    sha256Stored: shaStoredS,
    zstdDecompress: zstdS,
    sha256Content: shaContentS,
    walFrameChecks: framesS,
    pageWrites: writeS,
    whatIfCoalescedPageWrites: coalescedS,
    coalescedWrites: runs,
    verifiedReplayFromMemory: replayS,
    fsync: fsyncS,
    integrityCheck: integrityS,
    readMark: markS,
    readStateHint: hintS,
    readRestoreHistory: historyS,
    whatIfFetchAheadReplayAndFsync: aheadS,
  },
};
console.log(JSON.stringify(result, null, 2));
const mbps = (bytes: number, s: number) => (bytes / 1e6 / s).toFixed(0);
console.log(
  [
    "",
    `| stage (best of ${repeat}) | seconds | MB/s |`,
    "|---|---:|---:|",
    `| list | ${listS.toFixed(3)} | |`,
    `| GET ${keys.length} objects one at a time | ${serialS.toFixed(3)} | ${
      mbps(storedBytes, serialS)
    } stored |`,
    `| GET ${keys.length} objects, 8 in flight | ${parallelS.toFixed(3)} | ${
      mbps(storedBytes, parallelS)
    } stored |`,
    `| SHA-256 of the stored bytes | ${shaStoredS.toFixed(3)} | ${mbps(storedBytes, shaStoredS)} |`,
    `| zstd decompression | ${zstdS.toFixed(3)} | ${mbps(contentBytes, zstdS)} content |`,
    `| SHA-256 of the content | ${shaContentS.toFixed(3)} | ${mbps(contentBytes, shaContentS)} |`,
    `| WAL frame checks (salts, checksum chain) | ${framesS.toFixed(3)} | ${
      mbps(contentBytes - contents[0].byteLength, framesS)
    } |`,
    `| page writes (${frames} pages + snapshot) | ${writeS.toFixed(3)} | |`,
    `| what-if: the same, consecutive pages in one write (${runs} writes) | ${coalescedS.toFixed(3)} | |`,
    `| verified replay from memory (apply.ts: all of the above + writes) | ${replayS.toFixed(3)} | ${
      mbps(databaseBytes, replayS)
    } db |`,
    `| fsync | ${fsyncS.toFixed(3)} | |`,
    `| PRAGMA integrity_check | ${integrityS.toFixed(3)} | ${mbps(databaseBytes, integrityS)} db |`,
    `| before the first object: prune mark (HEAD retention.json) | ${markS.toFixed(3)} | |`,
    `| before the first object: state.json | ${hintS.toFixed(3)} | |`,
    `| before the first object: readRestoreHistory (listings) | ${historyS.toFixed(3)} | |`,
    `| what-if: all bodies fetched ahead (8 in flight), verified replay in order, fsync | ${
      aheadS.toFixed(3)
    } | ${mbps(databaseBytes, aheadS)} db |`,
  ].join("\n"),
);

// 6. A timeline of restoreCommand itself.
type Mark = { op: string; key: string; issued: number; answered: number; done: number };
const marks: Mark[] = [];
const t0 = performance.now();
const since = () => (performance.now() - t0) / 1000;
const timedStore: Store = new Proxy(store, {
  get(target, property) {
    if (property === "get" || property === "head") {
      return async (key: string) => {
        const mark: Mark = {
          op: String(property).toUpperCase(),
          key,
          issued: since(),
          answered: NaN,
          done: NaN,
        };
        marks.push(mark);
        const answer = await (property === "get" ? target.get(key) : target.head(key));
        mark.answered = mark.done = since();
        if (property !== "get" || !answer) return answer;
        const data = answer as ObjectData;
        return {
          ...data,
          body: data.body.pipeThrough(new TransformStream({ flush: () => void (mark.done = since()) })),
        };
      };
    }
    if (property === "list") {
      return async function* (prefix: string, startAfter?: string) {
        const mark: Mark = { op: "LIST", key: prefix, issued: since(), answered: NaN, done: NaN };
        marks.push(mark);
        try {
          for await (const entry of target.list(prefix, startAfter)) {
            if (Number.isNaN(mark.answered)) mark.answered = since();
            yield entry;
          }
        } finally {
          mark.done = since(); // also when the reader stops early
          if (Number.isNaN(mark.answered)) mark.answered = mark.done;
        }
      };
    }
    const value = Reflect.get(target, property);
    return typeof value === "function" ? value.bind(target) : value;
  },
});
const timelineOut = await Deno.makeTempFile({ prefix: "walsync-diag-restore-" });
await Deno.remove(timelineOut);
await restoreCommand(timedStore, name, { output: timelineOut });
const total = since();
await Deno.remove(timelineOut);
const gets = marks.filter((m) => m.op === "GET" && !m.key.endsWith(".json"));
const firstIssue = Math.min(...gets.map((m) => m.issued));
const lastBody = Math.max(...gets.map((m) => m.done));
let downloading = 0; // union of [issued, done] of the GETs
let end = 0;
for (const m of [...gets].sort((a, b) => a.issued - b.issued)) {
  const from = Math.max(m.issued, end);
  if (m.done > from) downloading += m.done - from;
  end = Math.max(end, m.done);
}
const inFlight = (at: number) => gets.filter((m) => m.issued <= at && m.done > at).length;
const samples = gets.map((m) => inFlight((m.issued + m.done) / 2));
console.log(
  [
    "",
    `restoreCommand in-process: ${total.toFixed(3)} s; first GET of a snapshot or segment after ` +
    `${firstIssue.toFixed(3)} s ` +
    `(reading state.json, listing, planning); ${marks.filter((m) => m.op === "HEAD").length} HEAD, ` +
    `${marks.filter((m) => m.op === "LIST").length} LIST, ${gets.length} GET; ` +
    `some GET in flight for ${downloading.toFixed(3)} s; GETs in flight (mean at mid-download) ` +
    `${(samples.reduce((a, b) => a + b, 0) / samples.length).toFixed(2)}; ` +
    `after the last body: ${
      (total - lastBody).toFixed(3)
    } s (last apply, truncate, fsync, integrity_check, rename)`,
    "",
    "| op | key | issued (s) | answered (s) | body read (s) |",
    "|---|---|---:|---:|---:|",
    ...marks.map((m) =>
      `| ${m.op} | ${m.key.split("/").pop()} | ${m.issued.toFixed(3)} | ${m.answered.toFixed(3)} | ${
        m.done.toFixed(3)
      } |`
    ),
  ].join("\n"),
);
