/**
 * Duplicate segments: an older version (or a race) may have stored two segments with the same index
 * in one generation, under different keys, e.g. a retried upload whose first attempt had landed,
 * possibly shipping more frames the second time. Readers pick the one that continues the chain and
 * report the other as an orphan: a warning, not damage (docs/design.md §5).
 *
 * The rule, for the segments with the index the chain expects next:
 * 1. only those that continue the chain before them (segment continuity) are candidates;
 * 2. among them, the one the next object (the next segment, or a snapshot) continues wins;
 * 3. otherwise the one reaching further (more frames), then the newest (the last in key order).
 * A segment whose index is below the one expected (its place is already taken) is an orphan too.
 * @module
 */
import type { BackupObject } from "../layout.ts";
import type { SegmentMeta, SnapshotMeta } from "../metadata.ts";
import { type PageSetMeta, stateAfterPageSet } from "../compact/meta.ts";
import {
  type ReplayState,
  segmentContinuity,
  snapshotContinuity,
  stateAfterSegment,
  stateAfterSnapshot,
} from "../restore/apply.ts";

/** Anything flowing through the chain in replay order: an object and its metadata, if readable. */
export interface ChainItem {
  object: BackupObject;
  /** A page set's metadata (src/compact/meta.ts) passes through as a non-segment. */
  meta: SnapshotMeta | SegmentMeta | PageSetMeta | null;
}

/** An item in chain order, or an orphan (a duplicate that is not on the chain). */
export interface Ordered<T extends ChainItem> {
  item: T;
  /** For an orphan: the segment index it duplicates, and the key that holds that place instead. */
  orphan: { index: number; instead: string | null } | null;
}

function segmentMeta(item: ChainItem): SegmentMeta | null {
  return item.object.kind === "segment" && item.meta && "index" in item.meta ? item.meta : null;
}

/** Whether `next` (a segment or a snapshot) continues the chain after segment `seg`. */
function continues(seg: SegmentMeta, next: ChainItem | null): boolean {
  if (!next?.meta) return false;
  const after = stateAfterSegment(seg);
  if ("firstIndex" in next.meta) return next.meta.firstIndex === after.nextIndex;
  return "index" in next.meta
    ? segmentContinuity(after, next.meta) === null
    : snapshotContinuity(after, next.meta as SnapshotMeta) === null;
}

/** Picks the segment of `group` (same index, key order) that belongs on the chain; see the module doc. */
export function pickDuplicate<T extends ChainItem>(
  group: T[],
  before: ReplayState | null,
  next: ChainItem | null,
): T {
  const metas = group.map((item) => segmentMeta(item)!);
  let candidates = group.map((_, i) => i);
  if (before) {
    const continuing = candidates.filter((i) => segmentContinuity(before, metas[i]) === null);
    if (continuing.length) candidates = continuing;
  }
  const continued = candidates.filter((i) => continues(metas[i], next));
  if (continued.length) candidates = continued;
  // Reaching further, then newest: the last of the longest.
  const best = candidates.reduce((a, b) => (metas[b].frameCount >= metas[a].frameCount ? b : a));
  return group[best];
}

/**
 * Puts items (in key/replay order) into chain order: duplicates resolved, orphans marked. `start` is
 * the chain's state before the first item (restore: after its snapshot), or null to take it from the
 * first snapshot seen (verify). Holds only one group of same-index segments at a time.
 */
export async function* chainOrder<T extends ChainItem>(
  items: AsyncIterable<T>,
  start: ReplayState | null,
): AsyncGenerator<Ordered<T>> {
  let state = start;
  let group: T[] = [];
  const resolve = function* (next: T | null): Generator<Ordered<T>> {
    if (group.length === 0) return;
    const chosen = group.length === 1 ? group[0] : pickDuplicate(group, state, next);
    const index = segmentMeta(chosen)!.index;
    for (const item of group) {
      if (item !== chosen) yield { item, orphan: { index, instead: chosen.object.key } };
    }
    yield { item: chosen, orphan: null };
    state = stateAfterSegment(segmentMeta(chosen)!);
    group = [];
  };
  for await (const item of items) {
    const seg = segmentMeta(item);
    if (seg && group.length && seg.index === segmentMeta(group[0])!.index) {
      group.push(item);
      continue;
    }
    yield* resolve(item);
    if (seg && state && seg.index < state.nextIndex) {
      yield { item, orphan: { index: seg.index, instead: null } };
    } else if (seg) {
      group = [item];
    } else {
      yield { item, orphan: null };
      if (item.meta && item.object.kind === "snapshot") {
        state ??= stateAfterSnapshot(item.meta as SnapshotMeta);
      } else if (item.meta && item.object.kind === "pages") {
        state = stateAfterPageSet(item.meta as PageSetMeta); // compacted segments (docs/design.md §11.1)
      } else if (item.object.kind !== "snapshot") state = null; // unreadable metadata: the chain is unknown
    }
  }
  yield* resolve(null);
}
