/**
 * One compaction pass over one database (docs/design.md §11.1): for each retained generation, build
 * the closed level-1 groups of segments into page sets, then each higher level from the level below,
 * every set uploaded and confirmed (HEAD: size and sha256); then delete the segments older than the
 * fine history whose level-1 set is confirmed, in multi-object deletes. Nothing else is ever deleted
 * here (page sets go with retention). A pass killed at any moment leaves only confirmed sets and
 * segments not yet deleted; the next pass continues from the listing.
 * @module
 */
import { DamageError } from "../restore/damage.ts";
import type { BackupObject } from "../layout.ts";
import * as log from "../log.ts";
import { segmentsOf, snapshotsByGeneration } from "../log/history.ts";
import { retainedView } from "../lifecycle/mark.ts";
import type { SegmentObject } from "../restore/apply.ts";
import { MAX_DELETE_BATCH, type Store } from "../storage/store.ts";
import { buildFromSegments, buildFromSets } from "./build.ts";
import { listPageSets, type PageSetObject } from "./key.ts";
import {
  contiguous,
  coveringSet,
  DEFAULT_FINE_HISTORY_MS,
  DEFAULT_LEVELS_MS,
  groupWindows,
} from "./levels.ts";
import { decodePageSetMeta } from "./meta.ts";

/** Settings of a compaction pass. */
export interface CompactionOptions {
  /** Level durations (ms), finest first; default 30 s, 5 min, 1 h. */
  levelsMs?: number[];
  /** Segments younger than this are kept (ms; default 1 h). */
  fineHistoryMs?: number;
  /** The current time (ms; tests and benchmarks generate history in the past). */
  now?: number;
  /**
   * What an earlier pass of this process learned about the database's page sets (per generation,
   * per level, trimmed to what later passes need): saves listing them all every pass. Only this
   * process (the lease holder) adds page sets; anything unexpected (damage, a set gone) drops it.
   */
  cache?: Map<number, PageSetObject[][]>;
}

/** What one pass did to one database. */
export interface CompactionResult {
  name: string;
  /** Page sets built, per level (index 0 = level 1). */
  built: number[];
  /** Segments deleted (replaced by confirmed level-1 sets) and their stored bytes. */
  deletedSegments: number;
  deletedBytes: number;
  /**
   * The earliest time (ms) a later pass has work without anything new being uploaded: when the next
   * level-1 set ages out of the fine history (+Infinity: never; now: something must be retried).
   * Everything else a pass does follows an upload (a segment or snapshot closes a window).
   */
  nextDueAt: number;
}

/** Runs one compaction pass over database `name`. */
export async function compactDatabase(
  store: Store,
  name: string,
  options: CompactionOptions = {},
): Promise<CompactionResult> {
  const levels = options.levelsMs ?? DEFAULT_LEVELS_MS;
  const fine = options.fineHistoryMs ?? DEFAULT_FINE_HISTORY_MS;
  const now = options.now ?? Date.now();
  const view = await retainedView(store, name); // never compact what a prune already let go
  const result: CompactionResult = {
    name,
    built: levels.map(() => 0),
    deletedSegments: 0,
    deletedBytes: 0,
    nextDueAt: Number.POSITIVE_INFINITY,
  };
  // The snapshot times of each generation (retained view), and which generations exist.
  const snapshots = new Map(
    [...await snapshotsByGeneration(view, name)].map(([g, list]) => [g, list.map((s) => s.time)]),
  );
  const generations = [...snapshots.keys()].sort((a, b) => a - b);
  const cache = options.cache ?? new Map<number, PageSetObject[][]>();
  for (const key of cache.keys()) if (!snapshots.has(key)) cache.delete(key);
  for (const [i, generation] of generations.entries()) {
    const ended = i < generations.length - 1;
    let byLevel = cache.get(generation);
    cache.delete(generation); // back only if the pass goes through
    byLevel ??= await listLevels(view, name, generation, levels.length);
    const clean = await compactGeneration(
      view,
      name,
      generation,
      snapshots.get(generation)!,
      ended,
      levels,
      byLevel,
      result,
    );
    const deletedAll = await deleteReplaced(view, name, generation, now - fine, byLevel[0], result);
    if (clean) cache.set(generation, trim(byLevel, now - fine - levels[0]));
    // The next set to age out of the fine history (sets are in index, hence time, order).
    const next = byLevel[0].find((s) => s.time > now - fine);
    if (next) result.nextDueAt = Math.min(result.nextDueAt, next.time + fine);
    if (!clean || !deletedAll) result.nextDueAt = now;
  }
  if (result.built.some((n) => n) || result.deletedSegments) {
    log.info(
      `${name}: compaction built ${result.built.map((n, l) => `${n} L${l + 1}`).join(", ")} page set(s); ` +
        `deleted ${result.deletedSegments} segment(s) (${result.deletedBytes} bytes) older than the fine history`,
    );
  }
  return result;
}

/** The page sets of one generation by level, in index order (one listing). */
async function listLevels(store: Store, name: string, generation: number, count: number) {
  const byLevel: PageSetObject[][] = Array.from({ length: count }, () => []);
  for await (const set of listPageSets(store, name, generation)) {
    if (set.level <= count) byLevel[set.level - 1].push(set);
  }
  for (const list of byLevel) list.sort((a, b) => a.firstIndex - b.firstIndex || a.lastIndex - b.lastIndex);
  return byLevel;
}

/**
 * What a later pass needs of `byLevel`: each level's last set, the sets the next level has not
 * merged yet, and the level-1 sets that may still replace segments (from `keepFrom` on).
 */
function trim(byLevel: PageSetObject[][], keepFrom: number): PageSetObject[][] {
  return byLevel.map((sets, l) => {
    const merged = byLevel[l + 1]?.at(-1)?.lastIndex ?? Infinity;
    return sets.filter((s, i) =>
      i === sets.length - 1 || s.lastIndex > merged || (l === 0 && s.time >= keepFrom)
    );
  });
}

/** Builds every closed group of every level of one generation; false when it stopped at damage. */
async function compactGeneration(
  store: Store,
  name: string,
  generation: number,
  snaps: number[],
  ended: boolean,
  levels: number[],
  byLevel: PageSetObject[][],
  result: CompactionResult,
): Promise<boolean> {
  // Level 1, from the segments after the last level-1 set.
  const frontier = byLevel[0].at(-1)?.time ?? -1;
  const segments: SegmentObject[] = [];
  for await (const s of segmentsOf(store, name, generation, frontier)) segments.push(s as SegmentObject);
  const latest = Math.max(segments.at(-1)?.time ?? -1, byLevel[0].at(-1)?.time ?? -1);
  const snapshotAfter = (t: number) => snaps.some((s) => s > t);
  const raw = segments.map((s) => ({ ...s, firstTime: s.time }));
  const lastRaw = raw.at(-1)?.time ?? Infinity;
  for (const group of groupWindows(raw, levels[0], snaps, ended, snapshotAfter(lastRaw))) {
    if (!group.closed) break;
    const built = await attempt(name, () => buildFromSegments(store, name, generation, group.items));
    if (!built) return false;
    byLevel[0].push(built.set);
    result.built[0]++;
  }
  // Level n, from level n − 1 sets after the last level-n set.
  for (let l = 1; l < levels.length; l++) {
    const done = byLevel[l].at(-1)?.lastIndex ?? -1;
    const sources = byLevel[l - 1].filter((s) => s.firstIndex > done);
    const later = (t: number) =>
      snapshotAfter(t) || Math.floor(latest / levels[l]) > Math.floor(t / levels[l]);
    const last = sources.at(-1)?.time ?? Infinity;
    for (const group of groupWindows(sources, levels[l], snaps, ended, later(last))) {
      if (!group.closed) break;
      if (!contiguous(group.items)) {
        log.warn(
          `${name}: compaction: level-${l} sets of a window are not contiguous; level ${l + 1} skipped`,
        );
        return false;
      }
      const built = await attempt(name, () => buildFromSets(store, name, generation, l + 1, group.items));
      if (!built) return false;
      byLevel[l].push(built.set);
      result.built[l]++;
    }
  }
  return true;
}

/** Runs a build; damage in its sources is logged and ends this generation's pass (null). */
async function attempt<T>(name: string, build: () => Promise<T>): Promise<T | null> {
  try {
    return await build();
  } catch (e) {
    if (!(e instanceof DamageError)) throw e;
    log.warn(`${name}: compaction stopped at damage (nothing deleted for it): ${e.message}`);
    return null;
  }
}

/**
 * Deletes the segments of `generation` whose level-1 set lies wholly before `cutoff` and is
 * confirmed now (HEAD: listed size, sha256 present, metadata readable): nothing is deleted before
 * what replaces it is uploaded and confirmed. A set reaching into the fine history keeps all its
 * segments: deleting the older half would leave the newer half unreachable until the set's end.
 * Returns false when a set could not be confirmed (its segments stay; a later pass tries again).
 */
async function deleteReplaced(
  store: Store,
  name: string,
  generation: number,
  cutoff: number,
  known: PageSetObject[],
  result: CompactionResult,
): Promise<boolean> {
  const candidates: BackupObject[] = [];
  for await (const s of segmentsOf(store, name, generation, -1, cutoff)) candidates.push(s);
  if (candidates.length === 0) return true;
  let level1 = [...known].sort((a, b) => a.time - b.time);
  if (candidates.some((s) => !coveringSet(level1, s.time))) {
    // Older segments than the known sets cover (a pass that fell behind): list them all once.
    level1 = [];
    for await (const set of listPageSets(store, name, generation)) if (set.level === 1) level1.push(set);
    level1.sort((a, b) => a.time - b.time);
  }
  const confirmed = new Map<string, boolean>();
  const isConfirmed = async (set: PageSetObject) => {
    let ok = confirmed.get(set.key);
    if (ok === undefined) {
      ok = await confirm(store, set);
      confirmed.set(set.key, ok);
    }
    return ok;
  };
  let batch: BackupObject[] = [];
  const flush = async () => {
    if (batch.length) await store.deleteMany(batch.map((o) => o.key));
    result.deletedSegments += batch.length;
    result.deletedBytes += batch.reduce((n, o) => n + o.size, 0);
    batch = [];
  };
  let unconfirmed = false;
  for (const segment of candidates) {
    const set = coveringSet(level1, segment.time);
    if (!set || set.time > cutoff) continue; // not built yet (an open window), or not wholly old
    if (!(await isConfirmed(set))) {
      unconfirmed = true;
      continue;
    }
    batch.push(segment);
    if (batch.length >= MAX_DELETE_BATCH) await flush();
  }
  await flush();
  return !unconfirmed;
}

/** HEAD of a page set: it is there, with the listed size, a sha256 and readable metadata. */
async function confirm(store: Store, set: PageSetObject): Promise<boolean> {
  const info = await store.head(set.key);
  if (!info || info.size !== set.size || !info.metadata.sha256) return false;
  try {
    const meta = decodePageSetMeta(info.metadata);
    return meta.firstIndex === set.firstIndex && meta.lastIndex === set.lastIndex &&
      meta.sha256 === info.metadata.sha256;
  } catch {
    return false;
  }
}
