/**
 * Replaying a snapshot and WAL segments, verifying every object on the way: SHA-256 of the content,
 * frame salts and checksum chain, and continuity from one object to the next (docs/design.md §1,
 * §4, §5, §6). `restore` replays into a file through a {@link PageWriter}; `verify` runs the same checks
 * without one, or only the metadata checks (`--quick`).
 *
 * Each object goes through two stages: its metadata (decoded, `sha256` present, size consistent
 * with what the metadata says, place in the chain) and its content (streamed once, hashed, WAL
 * frames verified). Every failure is a {@link DamageError} naming the object.
 * @module
 */
import { canDecode, decodeBody, storedBytesOnly } from "../codec/decode.ts";
import { ExitCode, WalsyncError } from "../errors.ts";
import { newSha256 } from "../hash.ts";
import type { BackupObject } from "../layout.ts";
import { decodeSegmentMeta, decodeSnapshotMeta, type SegmentMeta, type SnapshotMeta } from "../metadata.ts";
import type { ObjectData, ObjectInfo, Store } from "../storage/store.ts";
import { verifyFrame, WAL_FRAME_HEADER_SIZE } from "../wal.ts";
import { type Damage, DamageError, damageOf, type DamageReason, missingSegments } from "./damage.ts";
import { fixedRecords, reusedChunks } from "./frames.ts";
import type { PageWriter } from "./page_writer.ts";
import type { PageSetMeta } from "../compact/meta.ts";

export { fileWriter, type PageWriter } from "./page_writer.ts";

export {
  type ReplayState,
  segmentContinuity,
  snapshotContinuity,
  stateAfterSegment,
  stateAfterSnapshot,
} from "./continuity.ts";
import {
  type ReplayState,
  sameChecksum,
  segmentContinuity,
  stateAfterSegment,
  stateAfterSnapshot,
} from "./continuity.ts";

/** A snapshot's key, decoded. */
export type SnapshotObject = BackupObject & { kind: "snapshot" };

/** A segment's key, decoded. */
export type SegmentObject = BackupObject & { kind: "segment" };

/** The metadata of a snapshot or segment, by kind. */
type MetaOf<K extends BackupObject["kind"]> = K extends "snapshot" ? SnapshotMeta : SegmentMeta;

/** An object whose metadata could be decoded; `body` is its content when it was downloaded. */
interface Opened<K extends BackupObject["kind"]> {
  meta: MetaOf<K>;
  /** The stored size (NaN when the server did not say). */
  size: number;
  body: ReadableStream<Uint8Array> | null;
  /** Encrypted and no key given: `body` only checks the stored bytes and yields no content. */
  storedOnly?: boolean;
}

/**
 * A download already under way (or already in memory, see src/log/prefetch.ts): GET's answer, or
 * null when the object no longer exists.
 */
export type Fetch = () => Promise<ObjectData | null>;

/**
 * The content of an object, from its body as stored. THE DECODE POINT: every byte of a snapshot or
 * segment passes here on its way from the store to the checks and the output; a decoding step
 * (decompression, decryption) belongs here, between the raw stream and the content checks.
 */
function contentChunks(body: ReadableStream<Uint8Array>): AsyncIterable<Uint8Array> {
  return reusedChunks(body);
}

/** Throws a {@link DamageError} about `object`. */
function fail(
  store: Store,
  object: BackupObject,
  reason: DamageReason,
  message: string,
  index?: number,
): never {
  throw new DamageError(
    damageOf(object.key, object.kind, reason, message, { generation: object.generation, index }),
    store.url,
  );
}

/** The segment index of an object's metadata, for damage reports (undefined for snapshots). */
function indexOf(meta: SnapshotMeta | SegmentMeta): number | undefined {
  return "index" in meta ? meta.index : undefined;
}

/** The size the content of an object must have, according to its metadata. */
function expectedSize(meta: SnapshotMeta | SegmentMeta): number {
  return "index" in meta
    ? meta.frameCount * (WAL_FRAME_HEADER_SIZE + meta.pageSize)
    : meta.pageSize * meta.pageCount;
}

/** Checks a size against the one the metadata implies; returns the damage reason and message, or null. */
function sizeProblem(
  actual: number,
  meta: SnapshotMeta | SegmentMeta,
  expected = expectedSize(meta),
): [DamageReason, string] | null {
  if (actual === expected) return null;
  if (actual < expected) return ["truncated", `truncated: ${actual} bytes, its metadata says ${expected}`];
  return ["corrupt", `${actual} bytes, its metadata says ${expected}`];
}

/**
 * Stage one, part one: fetches an object (GET when `withBody`, else HEAD) and decodes its metadata;
 * the body is decoded (src/codec/decode.ts). Without the key an encrypted object's body only checks
 * its stored bytes when `keyless` (verify), else a missing or wrong key throws at once.
 * On failure the body (if any) has been released.
 */
async function openObject<K extends BackupObject["kind"]>(
  store: Store,
  object: BackupObject & { kind: K },
  withBody: boolean,
  keyless = false,
  fetched?: Fetch,
): Promise<Opened<K>> {
  const info = await fetchInfo(store, object, withBody, fetched);
  const raw = "body" in info ? (info.body as ReadableStream<Uint8Array>) : null;
  let meta: MetaOf<K>;
  try {
    const decode = object.kind === "snapshot" ? decodeSnapshotMeta : decodeSegmentMeta;
    meta = decode(info.metadata) as MetaOf<K>;
  } catch (e) {
    await raw?.cancel().catch(() => {});
    return fail(store, object, "metadata", `unreadable walsync metadata: ${(e as Error).message}`);
  }
  const damaged = (reason: DamageReason, why: string) => fail(store, object, reason, why, indexOf(meta));
  const storedOnly = keyless && !canDecode(store, meta.stored);
  if (!raw) return { meta, size: info.size, body: null, storedOnly };
  const body = storedOnly
    ? storedBytesOnly(meta.stored, raw, damaged)
    : decodeBody(store, object.key, meta.stored, raw, damaged);
  return { meta, size: info.size, body, storedOnly };
}

/** Stage one, part two: the metadata has a `sha256` and the stored size is the one it implies. */
function checkStored(store: Store, object: BackupObject, opened: Opened<BackupObject["kind"]>): void {
  const { meta, size } = opened;
  if (!meta.sha256) {
    fail(
      store,
      object,
      "metadata",
      "no sha256 in its metadata; refusing to use an unverifiable object",
      indexOf(meta),
    );
  }
  const problem = Number.isFinite(size) ? sizeProblem(size, meta, meta.stored.storedLength) : null;
  if (problem) fail(store, object, problem[0], problem[1], indexOf(meta));
}

/** Runs `fn`; if it throws, releases `body` first. */
async function releasingOnError<T>(
  body: ReadableStream<Uint8Array> | null,
  fn: () => Promise<T>,
): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    await body?.cancel().catch(() => {});
    throw e;
  }
}

/** GET or HEAD of a listed object; an object gone since the listing is damage ("missing"). */
async function fetchInfo(
  store: Store,
  object: BackupObject,
  withBody: boolean,
  fetched?: Fetch,
): Promise<ObjectInfo> {
  try {
    const info = fetched
      ? await fetched()
      : withBody
      ? await store.get(object.key)
      : await store.head(object.key);
    if (info) return info;
  } catch (e) {
    if (!(e instanceof WalsyncError && e.exitCode === ExitCode.NotFound)) throw e;
  }
  return fail(store, object, "missing", "listed, but it no longer exists");
}

/** Compares a computed SHA-256 with the one stored in the metadata. */
function checkDigest(store: Store, object: BackupObject, stored: string, actual: string, index?: number) {
  if (actual !== stored) {
    fail(
      store,
      object,
      "corrupt",
      `SHA-256 mismatch (stored ${stored}, content ${actual}); the object is corrupted`,
      index,
    );
  }
}

/** Stage two of a snapshot: streams its content, hashing it and handing it to `writer`. */
async function snapshotContent(
  store: Store,
  object: BackupObject,
  meta: SnapshotMeta,
  body: ReadableStream<Uint8Array>,
  writer?: PageWriter,
): Promise<void> {
  const hash = newSha256();
  let bytes = 0;
  for await (const chunk of contentChunks(body)) {
    hash.update(chunk);
    await writer?.writeAt(bytes, chunk);
    bytes += chunk.byteLength;
  }
  await writer?.flush?.();
  const size = sizeProblem(bytes, meta);
  if (size) fail(store, object, size[0], size[1]);
  checkDigest(store, object, meta.contentSha256, hash.digest("hex"));
}

/**
 * Stage two of a segment: streams its frames, verifying salts and the checksum chain from its
 * `before` checksum, that they match its metadata and end with a commit; hands each page to `writer`.
 */
async function segmentContent(
  store: Store,
  object: BackupObject,
  meta: SegmentMeta,
  body: ReadableStream<Uint8Array>,
  writer?: PageWriter,
): Promise<void> {
  const frameSize = WAL_FRAME_HEADER_SIZE + meta.pageSize;
  const bigEndian = (meta.magic & 1) === 1;
  const hash = newSha256();
  const hashed = async function* () {
    for await (const chunk of contentChunks(body)) {
      hash.update(chunk);
      yield chunk;
    }
  };
  let seed = meta.before;
  let frames = 0;
  let lastCommit = 0;
  let badFrame: number | null = null;
  try {
    for await (const frame of fixedRecords(hashed(), frameSize)) {
      if (badFrame !== null) continue; // only hash the rest, to tell how the object went bad
      const verified = verifyFrame(frame, meta, bigEndian, seed);
      if (!verified) {
        badFrame = meta.firstFrame + frames;
        continue;
      }
      seed = verified.checksum;
      frames++;
      lastCommit = verified.header.commitSize;
      await writer?.writeAt(
        (verified.header.pgno - 1) * meta.pageSize,
        frame.subarray(WAL_FRAME_HEADER_SIZE),
      );
    }
  } catch (e) {
    if (e instanceof RangeError) fail(store, object, "truncated", `truncated (${e.message})`, meta.index);
    throw e;
  } finally {
    await writer?.flush?.();
  }
  checkDigest(store, object, meta.contentSha256, hash.digest("hex"), meta.index);
  if (badFrame !== null) {
    const why =
      `frame ${badFrame} fails its WAL checksum or salts (the content matches its SHA-256: stored so)`;
    fail(store, object, "corrupt", why, meta.index);
  }
  if (
    frames === 0 || frames !== meta.frameCount || !sameChecksum(seed, meta.after) ||
    lastCommit !== meta.commitSize
  ) {
    fail(
      store,
      object,
      "corrupt",
      "its frames do not match its metadata (or do not end with a commit)",
      meta.index,
    );
  }
}

/** Replays a snapshot: downloads and verifies it, writing it from offset 0 through `writer`. */
export async function replaySnapshot(
  store: Store,
  object: SnapshotObject,
  writer?: PageWriter,
): Promise<ReplayState> {
  const opened = await openObject(store, object, true);
  await releasingOnError(opened.body, async () => {
    checkStored(store, object, opened);
    await snapshotContent(store, object, opened.meta, opened.body!, writer);
  });
  return stateAfterSnapshot(opened.meta);
}

/** Replays a segment after `state`: checks continuity, then downloads and verifies it, writing its pages. */
export async function replaySegment(
  store: Store,
  object: SegmentObject,
  state: ReplayState,
  writer?: PageWriter,
  fetched?: Fetch,
): Promise<ReplayState> {
  const opened = await openObject(store, object, true, false, fetched);
  const { meta } = opened;
  await releasingOnError(opened.body, async () => {
    checkStored(store, object, opened);
    if (meta.index > state.nextIndex) {
      const why = `the chain jumps from #${state.nextIndex - 1} to #${meta.index}, ${object.key}`;
      throw new DamageError(
        missingSegments(object.name, object.generation, state.nextIndex, meta.index - 1, why),
        store.url,
      );
    }
    const problem = segmentContinuity(state, meta);
    if (problem) fail(store, object, "chain", `does not continue the restore chain: ${problem}`, meta.index);
    await segmentContent(store, object, meta, opened.body!, writer);
  });
  return stateAfterSegment(meta);
}

/** What {@link inspectObject} found about one object on its own (its place in the chain is not checked). */
export interface Inspection {
  object: BackupObject;
  /** Its metadata, when readable (also when the content is damaged); page sets: src/compact/. */
  meta: SnapshotMeta | SegmentMeta | PageSetMeta | null;
  damage: Damage | null;
  /** False when it is encrypted and no key was given: only its stored bytes were checked. */
  contentChecked?: boolean;
}

/**
 * Checks one object on its own: its metadata and, unless `quick`, its content (streamed, nothing
 * written anywhere). Continuity is left to the caller, who has the metadata of its neighbours.
 */
export async function inspectObject(store: Store, object: BackupObject, quick: boolean): Promise<Inspection> {
  let meta: SnapshotMeta | SegmentMeta | null = null;
  try {
    const opened = await openObject(store, object, !quick, true);
    meta = opened.meta;
    await releasingOnError(opened.body, async () => {
      checkStored(store, object, opened);
      if (!opened.body) return;
      if (opened.storedOnly) return void await opened.body.pipeTo(new WritableStream());
      if ("index" in opened.meta) await segmentContent(store, object, opened.meta, opened.body);
      else await snapshotContent(store, object, opened.meta, opened.body);
    });
    return { object, meta, damage: null, contentChecked: !opened.storedOnly };
  } catch (e) {
    if (e instanceof DamageError) return { object, meta, damage: e.damage };
    throw e;
  }
}
