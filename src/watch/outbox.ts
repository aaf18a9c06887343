/**
 * Frozen uploads (docs/design.md §3.3, "Frozen uploads"): once a segment or snapshot is
 * given its key, time, index and metadata, that object is fixed. If its upload fails (or its answer
 * is lost), the next attempt sends the same key with the same metadata and the same bytes; nothing
 * newer is uploaded before it is confirmed. The content is checked against the SHA-256 recorded
 * when it was captured, so a retry can never send different bytes under the frozen key.
 * @module
 */
import { WalsyncError } from "../errors.ts";
import { newSha256 } from "../hash.ts";
import type { ByteSource } from "../storage/source.ts";
import type { Tip } from "./capture.ts";

/** One object waiting for a confirmed upload. */
export interface PendingUpload {
  kind: "segment" | "snapshot";
  key: string;
  /** The time in the key (ms since the epoch). */
  time: number;
  metadata: Record<string, string>;
  source: ByteSource;
  /** Where the replica stands once this object is stored. */
  tip: Tip;
  /** For the log: what it holds. */
  description: string;
  /** Bytes held in memory by this upload (a spooled segment), released once it is stored. */
  memoryBytes: number;
}

/** The frozen content of a pending upload is no longer what was captured: continuity is lost. */
export class CaptureChangedError extends WalsyncError {
  constructor(message: string) {
    super(message);
    this.name = "CaptureChangedError";
  }
}

/**
 * Wraps `source` so that every full read of it is checked against `sha256` (hex); a mismatch
 * throws {@link CaptureChangedError} at the end of the pass (uploadVerified reads the content once
 * to digest it before sending anything, so a changed content is caught before any PUT).
 */
export function frozenSource(source: ByteSource, sha256: string, what: string): ByteSource {
  return {
    size: source.size,
    async *chunks() {
      const hash = newSha256();
      let size = 0;
      for await (const chunk of source.chunks()) {
        hash.update(chunk);
        size += chunk.byteLength;
        yield chunk;
      }
      if (size !== source.size || hash.digest("hex") !== sha256) {
        throw new CaptureChangedError(`${what} changed after it was captured`);
      }
    },
  };
}

/**
 * Bytes held by spools of all replicas of this process: a spool is normally a few frames, but an
 * outage that starts right after a checkpoint keeps it in memory until the store is back.
 */
export const spoolBudget = {
  /** Largest spool of one database. */
  perDatabase: 8 * 1024 * 1024,
  /** All spools together. */
  total: 64 * 1024 * 1024,
  used: 0,
  /** How many bytes one more spool may take now. */
  available(): number {
    return Math.max(0, Math.min(this.perDatabase, this.total - this.used));
  },
};
