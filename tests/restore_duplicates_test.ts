/**
 * Duplicate segments (two objects with the same index in one generation, as an older version or a
 * retried upload whose first attempt landed may leave): restore and verify pick the one that
 * continues the chain and report the other as an orphan (a warning: verify exits 0).
 *
 * The duplicates are made in a real backup written by `walsync watch`, through the store API, with
 * real metadata: an exact copy under a later key; a longer copy (the retry shipped further) that the
 * next segment does not continue; and a longer copy at the end, where no successor tells.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { formatTimestamp } from "../src/layout.ts";
import { decodeSegmentMeta, encodeSegmentMeta } from "../src/metadata.ts";
import { openStore } from "../src/storage/open.ts";
import { bytesSource } from "../src/storage/source.ts";
import { uploadVerified } from "../src/storage/upload.ts";
import { decodeBody } from "../src/codec/decode.ts";
import { storedForm } from "../src/codec/codec.ts";
import type { Store } from "../src/storage/store.ts";
import {
  cleanup,
  cloneBackend,
  filesEqual,
  keyTime,
  makeWatchedBackup,
  sqlite3,
  tempDir,
  walsync,
  type WatchedBackup,
} from "./helpers.ts";

/** The store of a test backend, through walsync's own store API. */
function storeOf(f: WatchedBackup): Store {
  return openStore(f.backend.url, { env: (n) => f.backend.env[n] ?? Deno.env.get(n) });
}

/** An object's decoded content (decompressed, decrypted) and its metadata. */
async function download(store: Store, key: string) {
  const data = await store.get(key);
  if (data.metadata.format === undefined) { // state.json and the lease are stored as they are
    return { bytes: new Uint8Array(await new Response(data.body).arrayBuffer()), metadata: data.metadata };
  }
  const content = decodeBody(store, key, storedForm(data.metadata), data.body, (_reason, message) => {
    throw new Error(message);
  });
  return { bytes: new Uint8Array(await new Response(content).arrayBuffer()), metadata: data.metadata };
}

/** The metadata fields an upload adds (digests and codec): uploadVerified writes them afresh. */
const UPLOAD_FIELDS = [
  "sha256",
  "content-sha256",
  "content-length",
  "stored-length",
  "compression",
  "encryption",
  "key-id",
];

/** A key for the same generation at another time. */
function keyAt(key: string, time: number): string {
  return key.replace(/-\d{17}\.wal$/, `-${formatTimestamp(time)}.wal`);
}

/** Stores `bytes` under `key` with segment metadata `meta`, encoded and checksummed as walsync's upload does. */
async function putSegment(store: Store, key: string, bytes: Uint8Array, metadata: Record<string, string>) {
  const fields = Object.fromEntries(Object.entries(metadata).filter(([k]) => !UPLOAD_FIELDS.includes(k)));
  await uploadVerified(store, key, bytesSource(bytes), fields);
}

/** Two consecutive segments of the same WAL cycle (so that they can be joined), counted from the end. */
async function joinablePair(store: Store, f: WatchedBackup, fromEnd: number) {
  const segs = f.segments;
  for (let i = segs.length - 1 - fromEnd; i > 0; i--) {
    const between = f.snapshots.some((k) =>
      keyTime(k) > keyTime(segs[i - 1]) && keyTime(k) < keyTime(segs[i])
    );
    if (between) continue;
    const a = await download(store, segs[i - 1]);
    const b = await download(store, segs[i]);
    const ma = decodeSegmentMeta(a.metadata);
    const mb = decodeSegmentMeta(b.metadata);
    if (
      ma.salt1 === mb.salt1 && mb.firstFrame === ma.firstFrame + ma.frameCount && mb.index === ma.index + 1
    ) {
      return { keyA: segs[i - 1], keyB: segs[i], a, b, ma, mb, position: i - 1 };
    }
  }
  throw new Error("no two consecutive segments of one WAL cycle");
}

/** A's and B's frames as one segment with A's index: what a retry of A that shipped further would store. */
function joined(pair: Awaited<ReturnType<typeof joinablePair>>) {
  const bytes = new Uint8Array(pair.a.bytes.byteLength + pair.b.bytes.byteLength);
  bytes.set(pair.a.bytes);
  bytes.set(pair.b.bytes, pair.a.bytes.byteLength);
  const metadata = encodeSegmentMeta({
    ...pair.ma,
    frameCount: pair.ma.frameCount + pair.mb.frameCount,
    after: pair.mb.after,
    commitSize: pair.mb.commitSize,
  });
  return { bytes, metadata };
}

/** Restores latest and checks it equals the (checkpointed) source; returns stderr. */
async function assertLatestRestoreExact(f: WatchedBackup): Promise<string> {
  const out = `${await tempDir()}/restored.db`;
  const r = await walsync(["restore", f.name, "-o", out, "-b", f.backend.url, "--json"], {
    env: f.backend.env,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(await filesEqual(out, f.db), "the restore equals the checkpointed source byte for byte");
  await cleanup(out.replace(/\/restored\.db$/, ""));
  return r.stderr;
}

/** verify (full and quick) exits 0 and lists `orphan` under orphans, not damage. */
async function assertVerifyOrphan(f: WatchedBackup, orphan: string): Promise<void> {
  for (const quick of [false, true]) {
    const r = await walsync(["verify", "-b", f.backend.url, "--json", ...(quick ? ["--quick"] : [])], {
      env: f.backend.env,
    });
    assert.equal(r.code, 0, `verify${quick ? " --quick" : ""}: ${r.stdout}${r.stderr}`);
    const db = JSON.parse(r.stdout).databases.find((d: { name: string }) => d.name === f.name);
    assert.deepEqual(db.damaged, []);
    assert.deepEqual(db.orphans.map((o: { key: string }) => o.key), [orphan]);
  }
}

for (const label of ["s3", "file"] as const) {
  let pristine: Promise<WatchedBackup> | undefined;
  const backup = () =>
    pristine ??= makeWatchedBackup(label).then(async (f) => {
      await sqlite3(f.db, "PRAGMA wal_checkpoint(TRUNCATE)");
      return f;
    });
  const copy = async () => {
    const f = await backup();
    return { ...f, backend: await cloneBackend(f.backend) };
  };
  const opts = { sanitizeOps: false, sanitizeResources: false };

  Deno.test({
    ...opts,
    name: `[${label}] an exact duplicate of a middle segment under a later key is an orphan`,
    fn: async () => {
      const f = await copy();
      const store = storeOf(f);
      const pair = await joinablePair(store, f, 2);
      const dup = keyAt(pair.keyA, keyTime(pair.keyA) + 1);
      assert.ok(keyTime(dup) < keyTime(pair.keyB));
      await putSegment(store, dup, pair.a.bytes, pair.a.metadata);
      const stderr = await assertLatestRestoreExact(f);
      assert.match(stderr, /WARN .*duplicate of segment #\d+ that is not on the chain/);
      await assertVerifyOrphan(f, pair.keyA);
      await cleanup(f.backend);
    },
  });

  Deno.test({
    ...opts,
    name: `[${label}] a longer duplicate that the next segment does not continue is an orphan`,
    fn: async () => {
      const f = await copy();
      const store = storeOf(f);
      const pair = await joinablePair(store, f, 1);
      const longer = joined(pair);
      const dup = keyAt(pair.keyA, keyTime(pair.keyA) + 1);
      await putSegment(store, dup, longer.bytes, longer.metadata);
      await assertLatestRestoreExact(f);
      await assertVerifyOrphan(f, dup);
      await cleanup(f.backend);
    },
  });

  Deno.test({
    ...opts,
    name: `[${label}] with no successor, the duplicate that reaches further (a retry that shipped more) wins`,
    fn: async () => {
      const f = await copy();
      const store = storeOf(f);
      const pair = await joinablePair(store, f, 0);
      const at = new Date(keyTime(pair.keyB)).toISOString();
      // The retry stored A again with B's frames as well (B itself was never stored separately).
      // Restored at B's time, nothing after it tells which of the two continues: the longer one must win.
      const expected = `${await tempDir()}/expected.db`;
      const pristine = await walsync([
        "restore",
        f.name,
        "-o",
        expected,
        "-b",
        (await backup()).backend.url,
        "--point-in-time",
        at,
      ], { env: f.backend.env });
      assert.equal(pristine.code, 0, pristine.stderr);
      await store.delete(pair.keyB);
      await putSegment(store, pair.keyB, joined(pair).bytes, joined(pair).metadata);
      if (pair.keyB === f.segments.at(-1)) {
        // B ended the generation: watch would have recorded one segment fewer after that retry.
        const state = await download(store, `${f.name}/state.json`);
        const hint = JSON.parse(new TextDecoder().decode(state.bytes));
        assert.equal(hint.nextSegmentIndex, pair.mb.index + 1);
        hint.nextSegmentIndex = pair.mb.index;
        const content = new TextEncoder().encode(JSON.stringify(hint));
        const sha256 = createHash("sha256").update(content).digest("hex");
        await store.put(`${f.name}/state.json`, bytesSource(content), { ...state.metadata, sha256 });
      }
      const out = `${await tempDir()}/restored.db`;
      const r = await walsync(["restore", f.name, "-o", out, "-b", f.backend.url, "--point-in-time", at], {
        env: f.backend.env,
      });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(await filesEqual(out, expected), "the state after B's frames, as without the duplicate");
      assert.match(r.stderr, new RegExp(`${pair.keyA.replaceAll(".", "\\.")}: a duplicate of segment`));
      await cleanup(f.backend);
    },
  });
}
