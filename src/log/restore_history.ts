/**
 * The history a restore needs, read without listing the whole of it: every snapshot (few), the first
 * segment of each generation (one seek per generation), and only the segments after each generation's
 * newest snapshot (to know where it ends), plus, for a point in time inside a generation, the segments
 * from the newest snapshot at or before it up to it. A latest restore of a year of one-second segments
 * with hourly snapshots lists one hour of keys, not 3·10^7 (docs/design.md §6).
 * @module
 */
import { type BackupObject, formatGeneration, parseObjectKey } from "../layout.ts";
import type { Store } from "../storage/store.ts";
import {
  type DatabaseHistory,
  type GenerationHistory,
  segmentsOf,
  type SegmentSummary,
  snapshotsByGeneration,
} from "./history.ts";
import { addPageSetReach } from "../compact/history.ts";
import { mapOrdered } from "./prefetch.ts";

/** The first segment of each generation that has any, found by seeking from one generation to the next. */
async function firstSegments(store: Store, name: string): Promise<Map<number, BackupObject>> {
  const firsts = new Map<number, BackupObject>();
  let cursor: string | undefined;
  while (true) {
    let found: BackupObject | null = null;
    for await (const entry of store.list(`${name}/wal/`, cursor)) {
      // A store layer that ignored start-after must not make this loop forever.
      if (cursor !== undefined && entry.key <= cursor) continue;
      const object = parseObjectKey(entry.key, entry.size);
      if (object?.kind === "segment" && object.name === name) {
        found = object;
        break;
      }
      cursor = entry.key; // an unknown key: step over it
    }
    if (!found) return firsts;
    firsts.set(found.generation, found);
    // "~" sorts after every digit: past the last key `<gen>-<time>.wal` of this generation.
    cursor = `${name}/wal/${formatGeneration(found.generation)}-~`;
  }
}

/** Summarizes the segments of a generation after `after` (ms), noting the last one at or before `target`. */
async function tail(
  store: Store,
  name: string,
  generation: number,
  after: number,
  target: number,
  first: BackupObject,
): Promise<SegmentSummary> {
  // `last` starts at `first`: when nothing follows the newest snapshot, the generation ends with it.
  const summary: SegmentSummary = { count: 0, bytes: 0, first, last: first, lastAtOrBefore: null };
  for await (const segment of segmentsOf(store, name, generation, after)) {
    summary.count++;
    summary.bytes += segment.size;
    summary.last = segment;
    if (segment.time <= target) summary.lastAtOrBefore = segment;
  }
  return summary;
}

/** The last segment of a generation after `after` and at or before `target`, streamed up to `target`. */
async function lastUpTo(
  store: Store,
  name: string,
  generation: number,
  after: number,
  target: number,
): Promise<BackupObject | null> {
  let last: BackupObject | null = null;
  for await (const segment of segmentsOf(store, name, generation, after, target)) last = segment;
  return last;
}

/**
 * Reads what {@link chooseRestore} needs to restore `name` at `target` (ms; latest when +Infinity). The
 * segment summaries it returns are partial: `count` and `bytes` cover only the segments listed (after
 * the generation's newest snapshot); `first`, `last` and `lastAtOrBefore` are exact. Returns null when
 * nothing is stored.
 */
export async function readRestoreHistory(
  store: Store,
  name: string,
  target = Number.POSITIVE_INFINITY,
): Promise<DatabaseHistory | null> {
  // Independent listings, at once: the snapshots, and the first segment of each generation.
  const [snapshots, firsts] = await Promise.all([
    snapshotsByGeneration(store, name),
    firstSegments(store, name),
  ]);
  const numbers = [...new Set([...snapshots.keys(), ...firsts.keys()])].sort((a, b) => a - b);
  const readGeneration = async (generation: number): Promise<GenerationHistory> => {
    const snaps = snapshots.get(generation) ?? [];
    const first = firsts.get(generation);
    let segments: SegmentSummary | null = null;
    if (first) {
      const newest = snaps.at(-1);
      segments = await tail(store, name, generation, newest?.time ?? -1, target, first);
      if (!segments.lastAtOrBefore && first.time <= target) {
        // The target lies before the newest snapshot: read from the newest snapshot at or before it.
        const from = snaps.findLast((s) => s.time <= target);
        segments.lastAtOrBefore = await lastUpTo(store, name, generation, from?.time ?? -1, target);
      }
    }
    return { generation, snapshots: snaps, segments };
  };
  // The generations' tails are listed up to 8 at a time, and come back in order.
  const numbered = (async function* () {
    yield* numbers;
  })();
  const generations: GenerationHistory[] = [];
  for await (const g of mapOrdered(numbered, 8, (generation) => readGeneration(generation))) {
    generations.push(g);
  }
  if (!generations.length) return null;
  const db = { name, generations, others: [] };
  await addPageSetReach(store, db, target); // compacted history (docs/design.md §11.1)
  return db;
}
