/**
 * Capturing the committed WAL frames past the replica's tip (docs/design.md §3.2): one pass over the
 * WAL that validates salts and the checksum chain, decides whether a changed header is a clean
 * restart, and records the SHA-256 of exactly the committed frames, so that the segment uploaded
 * later (and every retry of it) is provably the same bytes. Optionally copies the frames into memory
 * (the spool taken under the write-lock barrier), within a byte limit.
 * @module
 */
import { newSha256 } from "../hash.ts";
import {
  closeFd,
  frameOffset,
  openForRead,
  readWalHeader,
  scanWal,
  startOf,
  WAL_FRAME_HEADER_SIZE,
  type WalHeader,
  type WalPosition,
} from "../wal.ts";

/** Where the replica stands: the cycle and last position captured (stored or queued for upload). */
export interface Tip {
  /** Header of the WAL cycle `position` belongs to (null: taken with no WAL, or not yet known). */
  header: WalHeader | null;
  position: WalPosition | null;
  pageSize: number;
}

/** Committed frames past the tip, ready to become one segment. */
export interface CapturedFrames {
  kind: "frames";
  header: WalHeader;
  /** The position the frames continue (the tip, or the start of a restarted cycle). */
  from: WalPosition;
  /** The position after the last commit frame. */
  end: WalPosition;
  /** Database size in pages after the last transaction. */
  commitSize: number;
  /** Byte range of the frames in the WAL file. */
  offset: number;
  length: number;
  /** SHA-256 (hex) of the frames' bytes as they were read. */
  sha256: string;
  /** The frames themselves, when they were copied into memory (a spool); else null. */
  bytes: Uint8Array | null;
}

/** The outcome of a capture. */
export type Capture =
  | { kind: "none" }
  | { kind: "gap"; reason: string }
  | { kind: "too-big"; bytes: number }
  | CapturedFrames;

/** Options of {@link captureCommitted}. */
export interface CaptureOptions {
  /**
   * Null when the read transaction has been held, as the protocol requires, since the tip was
   * captured; otherwise why not. A WAL restart (salt-1 + 1) is continuous only in the first case.
   */
  pinBroken: string | null;
  /** Copy the frames into memory, up to this many bytes (more: "too-big"). Absent: do not copy. */
  memoryLimit?: number;
}

/**
 * Reads the WAL at `walPath` past `tip` and describes the committed frames there (nothing is
 * uploaded here). A header change that is not a clean restart, a restart while the pin was not
 * held, or a changed page size is a gap.
 */
export function captureCommitted(walPath: string, tip: Tip, options: CaptureOptions): Capture {
  const wal = openForRead(walPath);
  if (wal === null) return { kind: "none" }; // no WAL yet, or not yet re-created: nothing new
  try {
    const header = readWalHeader(wal);
    if (!header) return { kind: "none" }; // empty or being rewritten: nothing committed to read yet
    const position = tip.position;
    let from: WalPosition;
    if (position && header.salt1 === position.salt1 && header.salt2 === position.salt2) {
      from = position;
    } else if (!position || header.salt1 === ((position.salt1 + 1) >>> 0)) {
      // A clean restart (or the first WAL after a WAL-less snapshot): continuous only if no frame
      // of the old cycle could have been overwritten unseen, i.e. the pin was held all along.
      if (options.pinBroken) {
        return {
          kind: "gap",
          reason: `the WAL restarted while continuity could not be proven (${options.pinBroken})`,
        };
      }
      from = startOf(header);
    } else {
      return {
        kind: "gap",
        reason: `the WAL header changed without a clean restart (salt-1 ${hex(position.salt1)} -> ${
          hex(header.salt1)
        })`,
      };
    }
    if (header.pageSize !== tip.pageSize) {
      return { kind: "gap", reason: `the page size changed from ${tip.pageSize} to ${header.pageSize}` };
    }
    return scanFrames(wal, header, from, options.memoryLimit);
  } finally {
    closeFd(wal);
  }
}

/** Scans from `from` to the last commit, hashing (and maybe copying) exactly the committed frames. */
function scanFrames(wal: number, header: WalHeader, from: WalPosition, memoryLimit?: number): Capture {
  const frameSize = WAL_FRAME_HEADER_SIZE + header.pageSize;
  const hash = newSha256();
  let committedHash: string | null = null;
  const copies: Uint8Array[] = [];
  let copied = 0;
  let tooBig = false;
  let committedCopies = 0;
  const scan = scanWal(wal, header, from, (frame, bytes) => {
    hash.update(bytes);
    if (memoryLimit !== undefined && !tooBig) {
      if (copied + bytes.byteLength > memoryLimit) tooBig = true;
      else {
        copies.push(bytes.slice());
        copied += bytes.byteLength;
      }
    }
    if (frame.commitSize !== 0) {
      committedHash = hash.copy().digest("hex");
      committedCopies = copies.length;
    }
  });
  const frames = scan.end.frame - from.frame;
  if (frames === 0) return { kind: "none" };
  const length = frames * frameSize;
  if (tooBig && memoryLimit !== undefined && length > memoryLimit) return { kind: "too-big", bytes: length };
  let bytes: Uint8Array | null = null;
  if (memoryLimit !== undefined) {
    bytes = new Uint8Array(length);
    for (let i = 0; i < committedCopies; i++) bytes.set(copies[i], i * frameSize);
  }
  return {
    kind: "frames",
    header,
    from,
    end: scan.end,
    commitSize: scan.commitSize!,
    offset: frameOffset(from.frame + 1, header.pageSize),
    length,
    sha256: committedHash!,
    bytes,
  };
}

function hex(n: number): string {
  return n.toString(16).padStart(8, "0");
}
