/**
 * A consistent, streamable image of a live database: the database file with every committed WAL
 * frame laid over it, exactly what a full checkpoint would produce (docs/design.md §3.3, snapshots).
 *
 * For a WAL database the position is fixed under a short write-lock barrier: a read-only
 * connection starts its read transaction while BEGIN IMMEDIATE is held on another, and the WAL is
 * scanned up to its last commit; the lock is then released and the image is streamed under the
 * read transaction alone, which keeps the frames it needs from being checkpointed or overwritten.
 * @module
 */
import { existsSync } from "node:fs";
import type { DatabaseSync } from "node:sqlite";
import { WalsyncError } from "../errors.ts";
import type { ByteSource } from "../storage/source.ts";
import {
  type Checksum,
  closeFd,
  frameOffset,
  openForRead,
  readAt,
  readWalHeader,
  scanWal,
  startOf,
  verifyFrame,
  WAL_FRAME_HEADER_SIZE,
  type WalHeader,
  type WalPosition,
} from "../wal.ts";
import { acquireWriteLock, beginRead, DbFile, endTransaction, openReader, openWriter } from "./database.ts";

/** Where a WAL frame that overrides a database page lives, and how to re-verify it. */
export interface OverlayFrame {
  frameNo: number;
  before: Checksum;
  after: Checksum;
}

/** An image of the database at one committed WAL position. */
export interface DatabaseImage extends ByteSource {
  dbFile: DbFile;
  pageSize: number;
  pageCount: number;
  /** "wal" or "rollback" (journal mode from the header). */
  mode: "wal" | "rollback";
  /** The WAL header at the position, or null when the WAL is absent or empty. */
  walHeader: WalHeader | null;
  /** The WAL position the image corresponds to (null when there was no valid WAL). */
  position: WalPosition | null;
}

/** How long a one-shot snapshot waits for the write lock (held only for the WAL scan). */
const SNAPSHOT_LOCK_WAIT_MS = 30_000;

/** Pages read from the database file per read call when streaming an image. */
const CHUNK_PAGES = 64;

/**
 * Builds the image of `path` given a WAL scan result. The caller must hold a read transaction that
 * pins the position for as long as the image is streamed.
 */
export function imageFromScan(args: {
  dbFile: DbFile;
  pageSize: number;
  pageCount: number;
  mode: "wal" | "rollback";
  walHeader: WalHeader | null;
  position: WalPosition | null;
  overlay: Map<number, OverlayFrame>;
}): DatabaseImage {
  const { dbFile, pageSize, pageCount, walHeader, overlay } = args;
  return {
    ...args,
    size: pageSize * pageCount,
    chunks: () => imageChunks(dbFile, pageSize, pageCount, walHeader, overlay),
  };
}

/** Byte offset of SQLite's lock byte: the page that holds it is never written (fileformat2 §1.3). */
const PENDING_BYTE = 0x40000000;

/**
 * Yields the image in chunks of up to CHUNK_PAGES pages, read into one reused buffer: database
 * pages from the file, overridden by their latest committed WAL frame.
 */
async function* imageChunks(
  dbFile: DbFile,
  pageSize: number,
  pageCount: number,
  walHeader: WalHeader | null,
  overlay: Map<number, OverlayFrame>,
): AsyncGenerator<Uint8Array> {
  const path = dbFile.path;
  const lockPage = Math.floor(PENDING_BYTE / pageSize) + 1;
  // The database descriptor is shared and stays open (see DbFile); only the WAL's is ours.
  const wal = walHeader && overlay.size > 0 ? openForRead(path + "-wal") : null;
  const frame = new Uint8Array(WAL_FRAME_HEADER_SIZE + pageSize);
  const buffer = new Uint8Array(Math.min(CHUNK_PAGES, Math.max(pageCount, 1)) * pageSize);
  try {
    for (let nextPage = 1; nextPage <= pageCount;) {
      const pages = Math.min(CHUNK_PAGES, pageCount - nextPage + 1);
      const chunk = buffer.subarray(0, pages * pageSize);
      const got = dbFile.read((nextPage - 1) * pageSize, chunk);
      if (got < chunk.byteLength) chunk.fill(0, got);
      for (let i = 0; i < pages; i++) {
        const pgno = nextPage + i;
        const over = overlay.get(pgno);
        if (over && wal !== null && walHeader) {
          const n = readAt(wal, frameOffset(over.frameNo, pageSize), frame);
          const ok = n === frame.byteLength &&
            verifyFrame(frame, walHeader, walHeader.bigEndian, over.before);
          if (ok && ok.checksum[0] === over.after[0] && ok.checksum[1] === over.after[1]) {
            chunk.set(frame.subarray(WAL_FRAME_HEADER_SIZE), i * pageSize);
            continue;
          }
          // The frame was overwritten by a WAL restart. SQLite only restarts the WAL under our read
          // transaction if the WAL had been fully checkpointed when it began, so the database file
          // already holds this page.
        }
        // Past the end of the file only the lock-byte page may be missing: SQLite never writes it,
        // so a checkpoint leaves a hole (zeros) there too.
        if ((i + 1) * pageSize > got && pgno !== lockPage) {
          throw new WalsyncError(
            `${path}: page ${pgno} is missing from the database file (file shorter than the database)`,
          );
        }
      }
      nextPage += pages;
      yield chunk;
    }
  } finally {
    if (wal !== null) closeFd(wal);
  }
}

/** A held consistent view of a database; release it when the image has been streamed. */
export interface HeldImage {
  image: DatabaseImage;
  /** Ends the read transaction and closes the connections. */
  release(): void;
}

/**
 * Opens a consistent image of the live database at `path` (WAL or rollback-journal mode).
 * Holds a read transaction until `release()`; the write lock only for the WAL scan.
 */
export async function openConsistentImage(path: string): Promise<HeldImage> {
  // The descriptor is opened before any connection and closed after all of them (see DbFile).
  const { dbFile, header } = await DbFile.open(path);
  const reader = openReaderOrClose(dbFile);
  let writer: DatabaseSync | undefined;
  const release = () => {
    closeAll(reader);
    dbFile.close();
  };
  try {
    if (header.writeVersion !== 2) {
      // Rollback journal: a read transaction (SHARED lock) keeps writers from changing the file.
      beginReadOrExplain(reader, path);
      const current = dbFile.readHeader();
      const pageCount = current.pageCount ?? Math.floor(dbFile.size() / current.pageSize);
      const image = imageFromScan({
        dbFile,
        pageSize: current.pageSize,
        pageCount,
        mode: "rollback",
        walHeader: null,
        position: null,
        overlay: new Map(),
      });
      return { image, release };
    }
    writer = openWriter(path);
    if (!(await acquireWriteLock(writer, SNAPSHOT_LOCK_WAIT_MS))) {
      throw new WalsyncError(
        `${path} stayed write-locked by another connection for ${SNAPSHOT_LOCK_WAIT_MS / 1000} s; ` +
          "could not take a consistent snapshot",
      );
    }
    let image: DatabaseImage;
    try {
      beginReadOrExplain(reader, path);
      image = scanImage(dbFile);
    } finally {
      endTransaction(writer);
      writer.close();
      writer = undefined;
    }
    return { image, release };
  } catch (e) {
    if (writer) closeAll(writer);
    release();
    throw e;
  }
}

/**
 * Starts the read transaction of a one-shot snapshot. A read-only connection cannot roll back a hot
 * journal (left by a writer that crashed mid-transaction); walsync does not write to the database
 * to do it, so it says what to do instead.
 */
function beginReadOrExplain(reader: DatabaseSync, path: string): void {
  try {
    beginRead(reader);
  } catch (e) {
    const message = (e as Error).message;
    if (/readonly|read-only/i.test(message) && existsSync(`${path}-journal`)) {
      throw new WalsyncError(
        `${path} has a hot rollback journal ${path}-journal (a writer stopped mid-transaction); walsync ` +
          `only reads databases and does not roll it back: open the database once with the application or ` +
          `sqlite3 (which rolls it back), then take the snapshot`,
      );
    }
    throw new WalsyncError(`cannot read ${path}: ${message}`);
  }
}

function openReaderOrClose(dbFile: DbFile): DatabaseSync {
  try {
    return openReader(dbFile.path);
  } catch (e) {
    dbFile.close();
    throw e;
  }
}

/**
 * Scans the WAL of the database to its last commit and builds the image at that position. Must be called
 * while the caller's read transaction and the write lock make that position the reader's snapshot.
 */
export function scanImage(dbFile: DbFile): DatabaseImage {
  const path = dbFile.path;
  const dbHeader = dbFile.readHeader();
  const overlay = new Map<number, OverlayFrame>();
  let walHeader: WalHeader | null = null;
  let position: WalPosition | null = null;
  let commitSize: number | null = null;
  const wal = openForRead(path + "-wal");
  if (wal !== null) {
    try {
      walHeader = readWalHeader(wal);
      if (walHeader) {
        // Frames join the overlay only once their transaction's commit frame has been seen.
        let pending: { pgno: number; frame: OverlayFrame }[] = [];
        const scan = scanWal(wal, walHeader, startOf(walHeader), (f) => {
          pending.push({ pgno: f.pgno, frame: { frameNo: f.frameNo, before: f.before, after: f.after } });
          if (f.commitSize !== 0) {
            for (const p of pending) overlay.set(p.pgno, p.frame);
            pending = [];
          }
        });
        position = scan.end;
        commitSize = scan.commitSize;
      }
    } finally {
      closeFd(wal);
    }
  }
  let pageCount = commitSize;
  let pageSize = walHeader?.pageSize ?? dbHeader.pageSize;
  if (pageCount === null) {
    const fileSize = dbFile.size();
    pageSize = dbHeader.pageSize;
    pageCount = dbHeader.pageCount ?? Math.floor(fileSize / pageSize);
    if (walHeader && walHeader.pageSize !== pageSize) walHeader = null;
  }
  return imageFromScan({ dbFile, pageSize, pageCount, mode: "wal", walHeader, position, overlay });
}

function closeAll(db: DatabaseSync): void {
  try {
    endTransaction(db);
  } catch { /* closing anyway */ }
  try {
    db.close();
  } catch { /* already closed */ }
}
