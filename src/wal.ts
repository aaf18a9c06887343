/**
 * Reading SQLite's write-ahead log: header, frames and the cumulative checksum (docs/design.md §2).
 * Pure functions over bytes plus a scanner over an open file; no SQLite library involved.
 * See https://www.sqlite.org/fileformat2.html#walformat
 * @module
 */

import { closeSync, openSync, readSync } from "node:fs";

export const WAL_HEADER_SIZE = 32;
export const WAL_FRAME_HEADER_SIZE = 24;
const WAL_MAGIC_LE = 0x377f0682;
const WAL_MAGIC_BE = 0x377f0683;
const WAL_FORMAT_VERSION = 3007000;

/** A running checksum: the two 32-bit words SQLite carries from frame to frame. */
export type Checksum = readonly [number, number];

/** A parsed, checksum-verified WAL header. */
export interface WalHeader {
  magic: number;
  /** true when the checksum words are big-endian (magic 0x377f0683). */
  bigEndian: boolean;
  pageSize: number;
  checkpointSeq: number;
  salt1: number;
  salt2: number;
  /** The header's checksum, which seeds the first frame's. */
  checksum: Checksum;
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Extends a WAL checksum over `data` (length a multiple of 8), as SQLite's walChecksumBytes does:
 * for each pair of 32-bit words x0, x1: s1 += x0 + s2; s2 += x1 + s1.
 */
export function walChecksum(data: Uint8Array, bigEndian: boolean, seed: Checksum): Checksum {
  let s1 = seed[0];
  let s2 = seed[1];
  const n = data.byteLength >>> 2;
  if (bigEndian !== LITTLE_ENDIAN_HOST && data.byteOffset % 4 === 0) {
    // Native word order: read through a typed array (several GB/s).
    const words = new Uint32Array(data.buffer, data.byteOffset, n);
    for (let i = 0; i < n; i += 2) {
      s1 = (s1 + words[i] + s2) >>> 0;
      s2 = (s2 + words[i + 1] + s1) >>> 0;
    }
  } else {
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const le = !bigEndian;
    for (let i = 0; i < n; i += 2) {
      s1 = (s1 + view.getUint32(i * 4, le) + s2) >>> 0;
      s2 = (s2 + view.getUint32(i * 4 + 4, le) + s1) >>> 0;
    }
  }
  return [s1, s2];
}

/** Parses and verifies a WAL header; returns null if it is missing, malformed or fails its checksum. */
export function parseWalHeader(bytes: Uint8Array): WalHeader | null {
  if (bytes.byteLength < WAL_HEADER_SIZE) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, WAL_HEADER_SIZE);
  const magic = view.getUint32(0);
  if (magic !== WAL_MAGIC_LE && magic !== WAL_MAGIC_BE) return null;
  if (view.getUint32(4) !== WAL_FORMAT_VERSION) return null;
  const pageSize = view.getUint32(8);
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) return null;
  const bigEndian = (magic & 1) === 1;
  const checksum = walChecksum(bytes.subarray(0, 24), bigEndian, [0, 0]);
  if (checksum[0] !== view.getUint32(24) || checksum[1] !== view.getUint32(28)) return null;
  return {
    magic,
    bigEndian,
    pageSize,
    checkpointSeq: view.getUint32(12),
    salt1: view.getUint32(16),
    salt2: view.getUint32(20),
    checksum,
  };
}

/** Builds the 32-byte WAL header for the given fields (used to re-derive a header's checksum). */
export function encodeWalHeader(
  fields: Pick<WalHeader, "magic" | "pageSize" | "checkpointSeq" | "salt1" | "salt2">,
): Uint8Array {
  const bytes = new Uint8Array(WAL_HEADER_SIZE);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, fields.magic);
  view.setUint32(4, WAL_FORMAT_VERSION);
  // The WAL header holds the page size as is, 65536 included (only the database header writes
  // 65536 as 1, having two bytes for it).
  view.setUint32(8, fields.pageSize);
  view.setUint32(12, fields.checkpointSeq);
  view.setUint32(16, fields.salt1);
  view.setUint32(20, fields.salt2);
  const checksum = walChecksum(bytes.subarray(0, 24), (fields.magic & 1) === 1, [0, 0]);
  view.setUint32(24, checksum[0]);
  view.setUint32(28, checksum[1]);
  return bytes;
}

/** The fields of one frame header. */
export interface FrameHeader {
  pgno: number;
  /** Database size in pages after this frame if it ends a transaction, else 0. */
  commitSize: number;
  salt1: number;
  salt2: number;
  checksum: Checksum;
}

/** Parses a 24-byte frame header. */
export function parseFrameHeader(bytes: Uint8Array): FrameHeader {
  const view = new DataView(bytes.buffer, bytes.byteOffset, WAL_FRAME_HEADER_SIZE);
  return {
    pgno: view.getUint32(0),
    commitSize: view.getUint32(4),
    salt1: view.getUint32(8),
    salt2: view.getUint32(12),
    checksum: [view.getUint32(16), view.getUint32(20)],
  };
}

/**
 * Verifies one frame (header + page) against the WAL's salts and the running checksum `seed`.
 * Returns the frame's checksum (the next seed) and header, or null if the frame is not valid.
 */
export function verifyFrame(
  frame: Uint8Array,
  salts: { salt1: number; salt2: number },
  bigEndian: boolean,
  seed: Checksum,
): { header: FrameHeader; checksum: Checksum } | null {
  const header = parseFrameHeader(frame);
  if (header.pgno === 0 || header.salt1 !== salts.salt1 || header.salt2 !== salts.salt2) return null;
  let checksum = walChecksum(frame.subarray(0, 8), bigEndian, seed);
  checksum = walChecksum(frame.subarray(WAL_FRAME_HEADER_SIZE), bigEndian, checksum);
  if (checksum[0] !== header.checksum[0] || checksum[1] !== header.checksum[1]) return null;
  return { header, checksum };
}

/** Byte offset of frame `frameNo` (1-based) in a WAL with the given page size. */
export function frameOffset(frameNo: number, pageSize: number): number {
  return WAL_HEADER_SIZE + (frameNo - 1) * (WAL_FRAME_HEADER_SIZE + pageSize);
}

/** A position in the WAL: after `frame` frames of the WAL cycle identified by its salts. */
export interface WalPosition {
  salt1: number;
  salt2: number;
  /** Number of frames (of this cycle) up to and including the position. */
  frame: number;
  /** Running checksum after frame `frame` (the header's checksum when frame is 0). */
  checksum: Checksum;
}

/** A valid frame found by {@link scanWal}. */
export interface ScannedFrame {
  frameNo: number;
  pgno: number;
  commitSize: number;
  /** Checksum before this frame (the seed used to verify it). */
  before: Checksum;
  /** Checksum after this frame. */
  after: Checksum;
}

/**
 * Positional read (pread) into `into` from `offset` of descriptor `fd`; returns how many bytes were
 * read (fewer at end of file).
 *
 * Uses node:fs's synchronous pread on a plain descriptor: Deno.FsFile's seek/read close a cloned
 * descriptor internally, which silently drops every POSIX lock the process holds on the file,
 * SQLite's included (measured: a seek on our own descriptor of the database released the SHARED
 * lock of walsync's read transaction). Reads are of local, usually cached files and small chunks.
 */
export function readAt(fd: number, offset: number, into: Uint8Array): number {
  let total = 0;
  while (total < into.byteLength) {
    const n = readSync(fd, into, total, into.byteLength - total, offset + total);
    if (n === 0) break;
    total += n;
  }
  return total;
}

/** Opens a file for reading as a plain descriptor; null if it does not exist. */
export function openForRead(path: string): number | null {
  try {
    return openSync(path, "r");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
}

/** Closes a descriptor from {@link openForRead}. */
export function closeFd(fd: number): void {
  try {
    closeSync(fd);
  } catch { /* already closed */ }
}

/**
 * Scans valid frames after `from` (a position in the cycle of `header`), in batches, calling
 * `onFrame` for each valid frame, and stops at the first invalid or missing one (or after frame
 * `untilFrame`).
 * Returns the position after the last valid **commit** frame (or `from` if there is none) and
 * the number of valid frames read past it (uncommitted frames are never part of the result).
 */
export function scanWal(
  file: number,
  header: WalHeader,
  from: WalPosition,
  onFrame?: (frame: ScannedFrame, bytes: Uint8Array) => void,
  untilFrame = Number.POSITIVE_INFINITY,
): { end: WalPosition; commitSize: number | null; pendingFrames: number } {
  const frameSize = WAL_FRAME_HEADER_SIZE + header.pageSize;
  const batchFrames = Math.max(1, Math.floor((1 << 20) / frameSize));
  const buffer = new Uint8Array(batchFrames * frameSize);
  let seed: Checksum = from.checksum;
  let frameNo = from.frame;
  let end = from;
  let commitSize: number | null = null;
  let pending = 0;
  scanning: while (true) {
    const got = readAt(file, frameOffset(frameNo + 1, header.pageSize), buffer);
    const whole = Math.floor(got / frameSize);
    for (let i = 0; i < whole; i++) {
      if (frameNo >= untilFrame) break scanning;
      const bytes = buffer.subarray(i * frameSize, (i + 1) * frameSize);
      const verified = verifyFrame(bytes, header, header.bigEndian, seed);
      if (!verified) break scanning;
      frameNo++;
      onFrame?.({
        frameNo,
        pgno: verified.header.pgno,
        commitSize: verified.header.commitSize,
        before: seed,
        after: verified.checksum,
      }, bytes);
      seed = verified.checksum;
      pending++;
      if (verified.header.commitSize !== 0) {
        end = { salt1: header.salt1, salt2: header.salt2, frame: frameNo, checksum: seed };
        commitSize = verified.header.commitSize;
        pending = 0;
      }
    }
    if (whole < batchFrames) break;
  }
  return { end, commitSize, pendingFrames: pending };
}

/** Reads and verifies the header of an open WAL file; null if short or invalid. */
export function readWalHeader(fd: number): WalHeader | null {
  const bytes = new Uint8Array(WAL_HEADER_SIZE);
  const n = readAt(fd, 0, bytes);
  return n === WAL_HEADER_SIZE ? parseWalHeader(bytes) : null;
}

/** The position just after the header of a WAL cycle (no frames yet). */
export function startOf(header: WalHeader): WalPosition {
  return { salt1: header.salt1, salt2: header.salt2, frame: 0, checksum: header.checksum };
}
