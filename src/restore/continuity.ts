/**
 * Continuity of a generation's chain, from metadata alone: the state a replay is in after each object,
 * and whether the next segment or snapshot starts exactly there (docs/design.md §5).
 * @module
 */
import type { SegmentMeta, SnapshotMeta } from "../metadata.ts";
import { encodeWalHeader, parseWalHeader, type WalPosition } from "../wal.ts";

/** The state of the database being rebuilt after each object. */
export interface ReplayState {
  pageSize: number;
  /** Database size in pages after the last applied object. */
  pageCount: number;
  position: WalPosition | null;
  /** Index the next segment must have. */
  nextIndex: number;
}

export function sameChecksum(a: readonly number[], b: readonly number[]): boolean {
  return a[0] === b[0] && a[1] === b[1];
}

function samePosition(a: WalPosition, b: WalPosition): boolean {
  return a.salt1 === b.salt1 && a.salt2 === b.salt2 && a.frame === b.frame &&
    sameChecksum(a.checksum, b.checksum);
}

/** The state a replay is in right after a snapshot. */
export function stateAfterSnapshot(meta: SnapshotMeta): ReplayState {
  return {
    pageSize: meta.pageSize,
    pageCount: meta.pageCount,
    position: meta.position,
    nextIndex: meta.segmentsBefore,
  };
}

/** The state a replay is in right after a segment (derived from its metadata alone). */
export function stateAfterSegment(meta: SegmentMeta): ReplayState {
  return {
    pageSize: meta.pageSize,
    pageCount: meta.commitSize,
    position: {
      salt1: meta.salt1,
      salt2: meta.salt2,
      frame: meta.firstFrame + meta.frameCount - 1,
      checksum: meta.after,
    },
    nextIndex: meta.index + 1,
  };
}

/** Checks that segment `seg` starts exactly where `state` ends; returns why not, or null. */
export function segmentContinuity(state: ReplayState, seg: SegmentMeta): string | null {
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

/**
 * Checks that a snapshot taken in the middle of a generation is the image of the chain at `state`
 * (the end of the segment before it): same segment count, page size, database size and WAL
 * position (or the start of a cleanly restarted WAL cycle, or no WAL at all). Returns why not, or null.
 *
 * No WAL at all (no position): an application's `wal_checkpoint(TRUNCATE)`, or its last connection
 * closing, empties the WAL only once every frame is backfilled, and walsync's read transaction keeps
 * any frame it has not captured from being backfilled (docs/design.md §3.1). So a snapshot of a
 * database without a WAL, after the segments the chain holds, is the chain's state; a full `verify`
 * still proves its content by replay.
 */
export function snapshotContinuity(state: ReplayState, snap: SnapshotMeta): string | null {
  if (snap.segmentsBefore !== state.nextIndex) {
    return `taken after ${snap.segmentsBefore} segment(s), but the chain has ${state.nextIndex} at its time`;
  }
  if (snap.pageSize !== state.pageSize) return `page size ${snap.pageSize} differs from ${state.pageSize}`;
  if (snap.pageCount !== state.pageCount) {
    return `${snap.pageCount} pages, but the chain holds ${state.pageCount} at this point`;
  }
  const pos = state.position;
  const at = snap.position;
  if (at === null) return null; // the WAL was emptied after a complete checkpoint (see above)
  if (pos === null) return "its WAL position does not continue the chain";
  if (samePosition(pos, at)) return null;
  if (at.frame === 0 && at.salt1 === ((pos.salt1 + 1) >>> 0)) return null; // a restarted, still empty WAL
  return "its WAL position is not the end of the previous segment";
}
