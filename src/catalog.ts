/**
 * What is in a store: the snapshots and segments of each database, grouped by generation, read
 * from a listing (the objects are the truth; state.json is only a hint).
 * @module
 */
import { type BackupObject, parseObjectKey } from "./layout.ts";
import type { Store } from "./storage/store.ts";

/** One generation: a snapshot-started, gap-free run of a database's history. */
export interface Generation {
  generation: number;
  /** Snapshots and segments, each in time order (= replay order). */
  snapshots: BackupObject[];
  segments: BackupObject[];
}

/** All generations of one database, oldest first. */
export interface DatabaseCatalog {
  name: string;
  generations: Generation[];
}

/** Lists the store (or just `name`) and groups snapshots and segments by database and generation. */
export async function readCatalog(store: Store, name?: string): Promise<DatabaseCatalog[]> {
  const byName = new Map<string, Map<number, Generation>>();
  for await (const entry of store.list(name ? `${name}/` : "")) {
    const object = parseObjectKey(entry.key, entry.size);
    if (!object || (name && object.name !== name)) continue;
    let generations = byName.get(object.name);
    if (!generations) byName.set(object.name, generations = new Map());
    let generation = generations.get(object.generation);
    if (!generation) {
      generations.set(
        object.generation,
        generation = { generation: object.generation, snapshots: [], segments: [] },
      );
    }
    (object.kind === "snapshot" ? generation.snapshots : generation.segments).push(object);
  }
  const result: DatabaseCatalog[] = [];
  for (const [dbName, generations] of [...byName].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const sorted = [...generations.values()].sort((a, b) => a.generation - b.generation);
    for (const g of sorted) {
      g.snapshots.sort((a, b) => a.time - b.time);
      g.segments.sort((a, b) => a.time - b.time);
    }
    result.push({ name: dbName, generations: sorted });
  }
  return result;
}

/** The time range a generation can restore: from its first snapshot to its last object. */
export function restorableRange(g: Generation): { from: number; to: number } | null {
  if (g.snapshots.length === 0) return null;
  const last = Math.max(g.snapshots.at(-1)!.time, g.segments.at(-1)?.time ?? 0);
  return { from: g.snapshots[0].time, to: last };
}

/** The latest time of any object of the database (for keeping object times strictly increasing). */
export function latestTime(db: DatabaseCatalog | undefined): number | undefined {
  let latest: number | undefined;
  for (const g of db?.generations ?? []) {
    for (const o of [...g.snapshots, ...g.segments]) {
      if (latest === undefined || o.time > latest) latest = o.time;
    }
  }
  return latest;
}
