/**
 * The history of a database as the store lists it, read in one streamed pass and kept small: every
 * snapshot (few: one per snapshot interval), but only a summary of each generation's segments
 * (count, bytes, first, last, last at or before a target time). The segments themselves are streamed
 * again, with a start-after seek, by whoever needs them ({@link segmentsOf}). Nothing here grows with
 * the number of segments (docs/design.md §6).
 *
 * Key order is replay order: `<name>/snapshots/<gen>-<time>.db` and `<name>/wal/<gen>-<time>.wal`
 * sort by generation, then by time, and times strictly increase within a database.
 * @module
 */
import { type BackupObject, parseObjectKey, segmentKey } from "../layout.ts";
import type { ListedObject, Store } from "../storage/store.ts";
import { parsePageSetKey } from "../compact/key.ts";

/** What a generation's segments add up to (from the listing only). */
export interface SegmentSummary {
  count: number;
  bytes: number;
  first: BackupObject;
  last: BackupObject;
  /** The last segment at or before the target time of the pass, if any. */
  lastAtOrBefore: BackupObject | null;
}

/** One generation: all its snapshots, and a summary of its segments. */
export interface GenerationHistory {
  generation: number;
  /** In key (= time) order. */
  snapshots: BackupObject[];
  segments: SegmentSummary | null;
  /** Its compacted page sets (docs/design.md §11.1), counted when the listing saw them. */
  pages?: { count: number; bytes: number; last: number };
}

/** A database's history: generations in order, and its other keys (state.json, lease.json, unknown). */
export interface DatabaseHistory {
  name: string;
  generations: GenerationHistory[];
  others: ListedObject[];
}

/** Accumulates the keys of one database (fed in key order). */
class HistoryBuilder {
  readonly #generations = new Map<number, GenerationHistory>();
  readonly others: ListedObject[] = [];
  readonly #pages = new Map<number, { count: number; bytes: number; last: number }>();

  constructor(readonly name: string, readonly target: number) {}

  add(entry: ListedObject): void {
    const object = parseObjectKey(entry.key, entry.size);
    const set = object ? null : parsePageSetKey(entry.key, entry.size);
    if (set?.name === this.name) {
      // `<name>/pages/` lists before the snapshots: counted here, attached to generations in build().
      const p = this.#pages.get(set.generation) ?? { count: 0, bytes: 0, last: 0 };
      p.count++;
      p.bytes += set.size;
      p.last = Math.max(p.last, set.time);
      this.#pages.set(set.generation, p);
      return;
    }
    if (!object || object.name !== this.name) {
      this.others.push(entry);
      return;
    }
    let g = this.#generations.get(object.generation);
    if (!g) {
      this.#generations.set(
        object.generation,
        g = { generation: object.generation, snapshots: [], segments: null },
      );
    }
    if (object.kind === "snapshot") {
      g.snapshots.push(object);
      return;
    }
    const s = g.segments ??= { count: 0, bytes: 0, first: object, last: object, lastAtOrBefore: null };
    s.count++;
    s.bytes += object.size;
    s.last = object;
    if (object.time <= this.target) s.lastAtOrBefore = object;
  }

  build(): DatabaseHistory {
    const generations = [...this.#generations.values()].sort((a, b) => a.generation - b.generation);
    // A generation with page sets but no snapshot or segment left is not listed (nothing restores it).
    for (const g of generations) {
      const pages = this.#pages.get(g.generation);
      if (pages) g.pages = pages;
    }
    return { name: this.name, generations, others: this.others };
  }
}

/** The database of a key (its first path segment), or null for a key outside any folder. */
function databaseOf(key: string): string | null {
  const slash = key.indexOf("/");
  return slash > 0 ? key.slice(0, slash) : null;
}

/**
 * Reads the history of database `name` in one streamed listing of `<name>/`; `target` (ms, default:
 * no limit) sets each generation's `lastAtOrBefore`. Returns null when nothing is stored under it.
 */
export async function readHistory(
  store: Store,
  name: string,
  target = Number.POSITIVE_INFINITY,
): Promise<DatabaseHistory | null> {
  const builder = new HistoryBuilder(name, target);
  let any = false;
  for await (const entry of store.list(`${name}/`)) {
    any = true;
    builder.add(entry);
  }
  return any ? builder.build() : null;
}

/**
 * Streams the histories of every database in the store (one listing of everything; a database's keys
 * are contiguous in key order), and hands keys outside any folder to `onStray`.
 */
export async function* readAllHistories(
  store: Store,
  onStray: (entry: ListedObject) => void,
): AsyncGenerator<DatabaseHistory> {
  let builder = null as HistoryBuilder | null;
  for await (const entry of store.list("")) {
    const name = databaseOf(entry.key);
    if (name === null) {
      onStray(entry);
      continue;
    }
    if (builder?.name !== name) {
      if (builder) yield builder.build();
      builder = new HistoryBuilder(name, Number.POSITIVE_INFINITY);
    }
    builder.add(entry);
  }
  if (builder) yield builder.build();
}

/**
 * Streams the segments of one generation with a time after `after` and at or before `upTo`, in key
 * order, seeking straight to them (start-after) instead of listing the history before them.
 */
export async function* segmentsOf(
  store: Store,
  name: string,
  generation: number,
  after = -1,
  upTo = Number.POSITIVE_INFINITY,
): AsyncGenerator<BackupObject & { kind: "segment" }> {
  // The key a segment at time `after` would have: every later segment of the generation sorts after it.
  const seek = segmentKey(name, generation, Math.max(after, 0));
  for await (const entry of store.list(`${name}/wal/`, seek)) {
    const object = parseObjectKey(entry.key, entry.size);
    if (!object || object.kind !== "segment") continue;
    if (object.generation < generation) continue;
    if (object.generation > generation || object.time > upTo) return;
    if (object.time > after) yield object as BackupObject & { kind: "segment" };
  }
}

/** Merges a generation's snapshots (in memory) with its streamed segments, in time (= replay) order. */
export async function* replayOrder(
  snapshots: BackupObject[],
  segments: AsyncIterable<BackupObject>,
): AsyncGenerator<BackupObject> {
  let i = 0;
  for await (const segment of segments) {
    while (i < snapshots.length && snapshots[i].time < segment.time) yield snapshots[i++];
    yield segment;
  }
  while (i < snapshots.length) yield snapshots[i++];
}

/** The time of a generation's last object. */
export function lastTime(g: GenerationHistory): number {
  return Math.max(g.snapshots.at(-1)?.time ?? 0, g.segments?.last.time ?? 0, g.pages?.last ?? 0);
}

/** The time range a generation can restore if nothing is damaged: its first snapshot to its last object. */
export function restorableRange(g: GenerationHistory): { from: number; to: number } | null {
  if (g.snapshots.length === 0) return null;
  return { from: g.snapshots[0].time, to: lastTime(g) };
}

/** Runs of generation numbers missing between the first stored one and `upTo` (default: the last). */
export function missingGenerations(db: DatabaseHistory, upTo = 0): [number, number][] {
  const numbers = db.generations.map((g) => g.generation);
  if (numbers.length === 0) return [];
  const runs: [number, number][] = [];
  const ends = [...numbers, Math.max(upTo, numbers.at(-1)!) + 1];
  for (let i = 1; i < ends.length; i++) {
    if (ends[i] > ends[i - 1] + 1) runs.push([ends[i - 1] + 1, ends[i] - 1]);
  }
  return runs;
}

/**
 * The latest time of any object of the database (for keeping object times strictly increasing), from
 * its history: what `watch` and `snapshot` need at start, without listing every key into memory.
 */
export function latestTimeOf(db: DatabaseHistory | null): number | undefined {
  const times = (db?.generations ?? []).map(lastTime).filter((t) => t > 0);
  return times.length ? Math.max(...times) : undefined;
}

/** The snapshots of `name`, by generation, in key (time) order: one listing of `<name>/snapshots/`. */
export async function snapshotsByGeneration(
  store: Store,
  name: string,
): Promise<Map<number, BackupObject[]>> {
  const snapshots = new Map<number, BackupObject[]>();
  for await (const entry of store.list(`${name}/snapshots/`)) {
    const object = parseObjectKey(entry.key, entry.size);
    if (object?.kind !== "snapshot" || object.name !== name) continue;
    const list = snapshots.get(object.generation) ?? [];
    list.push(object);
    snapshots.set(object.generation, list);
  }
  return snapshots;
}
