/**
 * Rebuilding a database file from a snapshot and WAL segments, verifying every object on the way:
 * SHA-256 of the content, frame salts and checksum chain, and continuity from one object to the
 * next (DESIGN.md §2.3, §5, §6). Writes only to the given temporary file.
 * @module
 */
import { corruptError, WalsyncError } from "../errors.ts";
import { newSha256 } from "../hash.ts";
import type { BackupObject } from "../layout.ts";
import { decodeSegmentMeta, decodeSnapshotMeta, type SegmentMeta } from "../metadata.ts";
import type { Store } from "../storage/store.ts";
import {
  encodeWalHeader,
  parseWalHeader,
  verifyFrame,
  WAL_FRAME_HEADER_SIZE,
  type WalPosition,
} from "../wal.ts";
import { fixedRecords, reusedChunks } from "./frames.ts";

/** The state of the file being rebuilt after each object. */
export interface ReplayState {
  pageSize: number;
  /** Database size in pages after the last applied object. */
  pageCount: number;
  position: WalPosition | null;
  /** Index the next segment must have. */
  nextIndex: number;
}

/** Yields the chunks of `stream`, letting `observe` see each one first. */
async function* tapped(stream: AsyncIterable<Uint8Array>, observe: (chunk: Uint8Array) => void) {
  for await (const chunk of stream) {
    observe(chunk);
    yield chunk;
  }
}

/** Writes all of `bytes` at the file's current position. */
export async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.byteLength;) off += await file.write(bytes.subarray(off));
}

/** Calls `fn`; turns a metadata decoding error into a corruption error naming the object. */
function decodeOrFail<T>(object: BackupObject, store: Store, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw corruptError(`${store.url}/${object.key}: unreadable walsync metadata: ${(e as Error).message}`);
  }
}

function sameChecksum(a: readonly number[], b: readonly number[]): boolean {
  return a[0] === b[0] && a[1] === b[1];
}

/** Downloads the snapshot into `file` (from offset 0), verifying its SHA-256 and size. */
export async function applySnapshot(
  store: Store,
  object: BackupObject,
  file: Deno.FsFile,
): Promise<ReplayState> {
  const data = await store.get(object.key);
  const name = `${store.url}/${object.key}`;
  const meta = decodeOrFail(object, store, () => decodeSnapshotMeta(data.metadata));
  if (!meta.sha256) {
    await data.body.cancel();
    throw corruptError(`${name}: no sha256 in its metadata; refusing to use an unverifiable object`);
  }
  const hash = newSha256();
  let bytes = 0;
  await file.seek(0, Deno.SeekMode.Start);
  for await (const chunk of reusedChunks(data.body)) {
    hash.update(chunk);
    bytes += chunk.byteLength;
    await writeAll(file, chunk);
  }
  const actual = hash.digest("hex");
  if (actual !== meta.sha256) {
    throw corruptError(
      `${name}: SHA-256 mismatch (stored ${meta.sha256}, content ${actual}); the object is corrupted`,
    );
  }
  if (bytes !== meta.pageSize * meta.pageCount) {
    throw corruptError(
      `${name}: size ${bytes} does not match ${meta.pageCount} pages of ${meta.pageSize} bytes`,
    );
  }
  return {
    pageSize: meta.pageSize,
    pageCount: meta.pageCount,
    position: meta.position,
    nextIndex: meta.segmentsBefore,
  };
}

/** Checks that `seg` starts exactly where `state` ends; returns why not, or null. */
function continuityProblem(state: ReplayState, seg: SegmentMeta): string | null {
  if (seg.index !== state.nextIndex) return `expected segment #${state.nextIndex}, found #${seg.index}`;
  if (seg.pageSize !== state.pageSize) return `page size ${seg.pageSize} differs from ${state.pageSize}`;
  const pos = state.position;
  if (pos && seg.salt1 === pos.salt1 && seg.salt2 === pos.salt2) {
    if (seg.firstFrame !== pos.frame + 1) {
      return `starts at frame ${seg.firstFrame}, expected ${pos.frame + 1}`;
    }
    if (!sameChecksum(seg.before, pos.checksum)) {
      return "its starting checksum does not continue the previous object";
    }
    return null;
  }
  // A new WAL cycle: only a clean restart (salt-1 + 1, from frame 1) is continuous.
  if (pos && seg.salt1 !== ((pos.salt1 + 1) >>> 0)) return "WAL salts changed without a clean restart";
  if (seg.firstFrame !== 1) return `a new WAL cycle starting at frame ${seg.firstFrame}`;
  const header = parseWalHeader(encodeWalHeader({ ...seg }));
  if (!header || !sameChecksum(header.checksum, seg.before)) return "its WAL header checksum does not match";
  return null;
}

/** Downloads a segment and writes its frames into `file`, verifying everything; returns the new state. */
export async function applySegment(
  store: Store,
  object: BackupObject,
  file: Deno.FsFile,
  state: ReplayState,
): Promise<ReplayState> {
  const data = await store.get(object.key);
  const name = `${store.url}/${object.key}`;
  const meta = decodeOrFail(object, store, () => decodeSegmentMeta(data.metadata));
  const fail = async (why: string): Promise<never> => {
    await data.body.cancel().catch(() => {});
    throw corruptError(`${name}: ${why}`);
  };
  if (!meta.sha256) return await fail("no sha256 in its metadata; refusing to use an unverifiable object");
  const problem = continuityProblem(state, meta);
  if (problem) return await fail(`does not continue the restore chain: ${problem}`);
  const frameSize = WAL_FRAME_HEADER_SIZE + meta.pageSize;
  const bigEndian = (meta.magic & 1) === 1;
  const hash = newSha256();
  let seed = meta.before;
  let frames = 0;
  let lastCommit = 0;
  try {
    for await (
      const frame of fixedRecords(tapped(reusedChunks(data.body), (chunk) => hash.update(chunk)), frameSize)
    ) {
      const verified = verifyFrame(frame, meta, bigEndian, seed);
      if (!verified) {
        throw corruptError(`${name}: frame ${meta.firstFrame + frames} fails its WAL checksum or salts`);
      }
      seed = verified.checksum;
      frames++;
      lastCommit = verified.header.commitSize;
      await file.seek((verified.header.pgno - 1) * meta.pageSize, Deno.SeekMode.Start);
      await writeAll(file, frame.subarray(WAL_FRAME_HEADER_SIZE));
    }
  } catch (e) {
    if (e instanceof WalsyncError) throw e;
    if (e instanceof RangeError) throw corruptError(`${name}: truncated (${e.message})`);
    throw e;
  }
  const actual = hash.digest("hex");
  if (actual !== meta.sha256) {
    throw corruptError(
      `${name}: SHA-256 mismatch (stored ${meta.sha256}, content ${actual}); the object is corrupted`,
    );
  }
  if (
    frames !== meta.frameCount || !sameChecksum(seed, meta.after) || lastCommit !== meta.commitSize ||
    frames === 0
  ) {
    throw corruptError(`${name}: its frames do not match its metadata (or do not end with a commit)`);
  }
  return {
    pageSize: state.pageSize,
    pageCount: meta.commitSize,
    position: { salt1: meta.salt1, salt2: meta.salt2, frame: meta.firstFrame + frames - 1, checksum: seed },
    nextIndex: meta.index + 1,
  };
}
