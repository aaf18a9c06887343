/**
 * The level rules of compaction (docs/design.md §11.1), pure: no I/O.
 *
 * Level 1 merges the segments of one level-1 window (default 30 s), level n the level n − 1 sets of
 * one level-n window (default 5 min, 1 h). A set never spans a snapshot: windows are cut at every
 * snapshot of the generation, so a restore starting from any snapshot finds sets that start exactly
 * there. A group is built only once it is closed: something later of the same generation is stored
 * (uploads are strictly in order, so nothing of the group can still arrive), or a later generation
 * exists.
 * @module
 */
import { parseDuration } from "../duration.ts";
import { usageError } from "../errors.ts";
import type { PageSetObject } from "./key.ts";

/** Default level durations: 30 s, 5 min, 1 h (like Litestream 0.5). */
export const DEFAULT_LEVELS_MS = [30_000, 300_000, 3_600_000];
/** Default `--fine-history`: segments are kept (one-sync-interval precision) for the last hour. */
export const DEFAULT_FINE_HISTORY_MS = 3_600_000;

/** Something placed in time: a segment (`firstTime` = `time`) or a page set. */
export interface Timed {
  firstTime: number;
  time: number;
}

/** A run of consecutive items that one page set of the next level merges. */
export interface Group<T extends Timed> {
  items: T[];
  /** Window number (start time / level duration). */
  window: number;
  /** Whether nothing more can join it (see the module doc). */
  closed: boolean;
}

/**
 * Parses a list of level durations (`30s,5m,1h`): increasing, each a multiple of the one before
 * (so a window of one level lies inside one window of the next), at most 9 levels.
 */
export function parseLevels(text: string): number[] {
  const levels = text.split(",").map((s) => parseDuration(s.trim()));
  const bad = levels.some((ms, i) =>
    ms === null || (i > 0 && (ms <= levels[i - 1]! || ms % levels[i - 1]! !== 0))
  );
  if (bad || levels.length === 0 || levels.length > 9) {
    throw usageError(
      `invalid compaction levels "${text}": use increasing durations, each a multiple of the previous (e.g. 30s,5m,1h)`,
    );
  }
  return levels as number[];
}

/** How many of `snapshotTimes` (sorted) come before `t`: the snapshot "epoch" of an item at `t`. */
function epochOf(snapshotTimes: number[], t: number): number {
  let lo = 0;
  let hi = snapshotTimes.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (snapshotTimes[mid] < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Groups `items` (in time order) into windows of `durationMs`, cut at every snapshot. The last group
 * is closed only when `ended` (a later generation exists) or `laterExists` says something later of
 * the generation is stored; every group before the last is closed.
 */
export function groupWindows<T extends Timed>(
  items: T[],
  durationMs: number,
  snapshotTimes: number[],
  ended: boolean,
  laterExists = false,
): Group<T>[] {
  const groups: (Group<T> & { epoch: number })[] = [];
  for (const item of items) {
    const window = Math.floor(item.firstTime / durationMs);
    const epoch = epochOf(snapshotTimes, item.firstTime);
    const last = groups.at(-1);
    if (last && last.window === window && last.epoch === epoch) last.items.push(item);
    else groups.push({ items: [item], window, epoch, closed: true });
  }
  const last = groups.at(-1);
  if (last) last.closed = ended || laterExists;
  return groups.map(({ items, window, closed }) => ({ items, window, closed }));
}

/** Whether `sets` (in order) replace one unbroken run of segment indexes. */
export function contiguous(sets: PageSetObject[]): boolean {
  return sets.every((s, i) => i === 0 || s.firstIndex === sets[i - 1].lastIndex + 1);
}

/**
 * The page sets a restore applies after reaching segment index `nextIndex`, up to time `upTo`:
 * repeatedly the set that starts exactly at the next index and reaches furthest without passing
 * `upTo`. What is left after the last one is replayed from segments (docs/design.md §11.1).
 */
export function restorePath(sets: PageSetObject[], nextIndex: number, upTo: number): PageSetObject[] {
  const byFirst = new Map<number, PageSetObject>();
  for (const s of sets) {
    if (s.time > upTo) continue;
    const best = byFirst.get(s.firstIndex);
    if (!best || s.lastIndex > best.lastIndex) byFirst.set(s.firstIndex, s);
  }
  const path: PageSetObject[] = [];
  for (let next = byFirst.get(nextIndex); next; next = byFirst.get(next.lastIndex + 1)) path.push(next);
  return path;
}

/** The level-1 set whose time range holds `t` (sets in time order), or undefined. */
export function coveringSet(level1: PageSetObject[], t: number): PageSetObject | undefined {
  let lo = 0;
  let hi = level1.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (level1[mid].time < t) lo = mid + 1;
    else hi = mid;
  }
  const s = level1[lo];
  return s && s.firstTime <= t && t <= s.time ? s : undefined;
}
