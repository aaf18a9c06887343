/**
 * Resuming a stored generation after a restart of walsync (docs/design.md §3.4): where the newest
 * generation ends (from its last object's metadata), and whether the WAL on disk still holds that
 * exact position, so that the frames after it can be shipped as the continuation.
 * @module
 */
import type { BackupObject } from "../layout.ts";
import type { DatabaseHistory } from "../log/history.ts";
import * as log from "../log.ts";
import { decodeSegmentMeta, decodeSnapshotMeta } from "../metadata.ts";
import type { Store } from "../storage/store.ts";
import { closeFd, openForRead, readWalHeader, scanWal, startOf, type WalPosition } from "../wal.ts";
import type { Tip } from "./capture.ts";

/** The end of the newest stored generation. */
export interface StoredTip {
  generation: number;
  nextIndex: number;
  lastSnapshotAt: number;
  tip: Tip;
}

/**
 * The last stored position of the newest generation of `history` (the streamed listing's summary:
 * nothing here grows with the number of segments), read from its last object's metadata.
 */
export async function readStoredTip(
  store: Store,
  name: string,
  history: DatabaseHistory | null,
): Promise<StoredTip | null> {
  const generation = history?.generations.at(-1);
  if (!generation || generation.snapshots.length === 0) return null;
  const lastSnapshot = generation.snapshots.at(-1)!;
  const lastSegment = generation.segments?.last;
  const last: BackupObject = lastSegment && lastSegment.time > lastSnapshot.time ? lastSegment : lastSnapshot;
  const head = await store.head(last.key);
  if (!head) return null;
  try {
    const lastSnapshotAt = generation.snapshots.at(-1)!.time;
    if (last.kind === "snapshot") {
      const meta = decodeSnapshotMeta(head.metadata);
      return {
        generation: generation.generation,
        nextIndex: meta.segmentsBefore,
        lastSnapshotAt,
        tip: { header: null, position: meta.position, pageSize: meta.pageSize },
      };
    }
    const meta = decodeSegmentMeta(head.metadata);
    return {
      generation: generation.generation,
      nextIndex: meta.index + 1,
      lastSnapshotAt,
      tip: {
        header: null,
        position: {
          salt1: meta.salt1,
          salt2: meta.salt2,
          frame: meta.firstFrame + meta.frameCount - 1,
          checksum: meta.after,
        },
        pageSize: meta.pageSize,
      },
    };
  } catch (e) {
    log.warn(`${name}: cannot read ${last.key} to resume: ${(e as Error).message}`);
    return null;
  }
}

/**
 * Checks that the WAL at `walPath` still holds the stored position of `tip` (same cycle, and the
 * checksum chain reaches exactly the stored checksum at that frame). Returns why not, or null; on
 * success fills in the cycle header of `tip`.
 */
export function walStillHolds(walPath: string, tip: Tip): string | null {
  const position = tip.position;
  if (!position) return "the last snapshot was taken without a WAL";
  const wal = openForRead(walPath);
  if (wal === null) return "the WAL file is gone";
  try {
    const header = readWalHeader(wal);
    if (!header) return "the WAL has no valid header";
    if (header.salt1 !== position.salt1 || header.salt2 !== position.salt2) {
      return "the WAL was restarted or replaced while walsync was not watching";
    }
    if (header.pageSize !== tip.pageSize) return "the page size changed";
    let reached: WalPosition | null = position.frame === 0 ? startOf(header) : null;
    scanWal(wal, header, startOf(header), (frame) => {
      if (frame.frameNo === position.frame) {
        reached = { salt1: header.salt1, salt2: header.salt2, frame: frame.frameNo, checksum: frame.after };
      }
    }, position.frame);
    const at = reached as WalPosition | null;
    if (!at || at.checksum[0] !== position.checksum[0] || at.checksum[1] !== position.checksum[1]) {
      return "the WAL no longer holds the last shipped frame";
    }
    tip.header = header;
    return null;
  } finally {
    closeFd(wal);
  }
}
