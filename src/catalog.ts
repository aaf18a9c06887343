/**
 * What is in a store: the snapshots and segments of each database, grouped by generation, read
 * from a listing (the objects are the truth; state.json is only a hint).
 * @module
 */
import { type BackupObject, parseObjectKey } from "./layout.ts";
import type { ListedObject, Store } from "./storage/store.ts";

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
  /** Keys under `<name>/` that are neither snapshots nor segments (state.json, anything unknown). */
  others: ListedObject[];
}

/** Everything in a store (or under some names), grouped by database. */
export interface StoreContents {
  /** Every database with at least one key under `<name>/`, sorted by name. */
  databases: DatabaseCatalog[];
  /** Keys outside any `<name>/` folder. */
  stray: ListedObject[];
}

/** The database of a key (its first path segment), or null for a key outside any folder. */
function databaseOf(key: string): string | null {
  const slash = key.indexOf("/");
  return slash > 0 ? key.slice(0, slash) : null;
}

/** Lists `prefixes` of the store (every key when empty). */
async function* listAll(store: Store, prefixes: string[]): AsyncIterable<ListedObject> {
  for (const prefix of prefixes.length ? prefixes : [""]) yield* store.list(prefix);
}

/** Sorts generations and their objects into replay order. */
function sorted(name: string, generations: Map<number, Generation>, others: ListedObject[]): DatabaseCatalog {
  const list = [...generations.values()].sort((a, b) => a.generation - b.generation);
  for (const g of list) {
    g.snapshots.sort((a, b) => a.time - b.time);
    g.segments.sort((a, b) => a.time - b.time);
  }
  return { name, generations: list, others };
}

/** Lists the store (or only the databases in `names`) and groups every key by database and generation. */
export async function readStore(store: Store, names: string[] = []): Promise<StoreContents> {
  const byName = new Map<string, { generations: Map<number, Generation>; others: ListedObject[] }>();
  const stray: ListedObject[] = [];
  for await (const entry of listAll(store, names.map((n) => `${n}/`))) {
    const name = databaseOf(entry.key);
    if (name === null) {
      stray.push(entry);
      continue;
    }
    let db = byName.get(name);
    if (!db) byName.set(name, db = { generations: new Map(), others: [] });
    const object = parseObjectKey(entry.key, entry.size);
    if (!object) {
      db.others.push(entry);
      continue;
    }
    let generation = db.generations.get(object.generation);
    if (!generation) {
      db.generations.set(
        object.generation,
        generation = { generation: object.generation, snapshots: [], segments: [] },
      );
    }
    (object.kind === "snapshot" ? generation.snapshots : generation.segments).push(object);
  }
  const databases = [...byName].sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, db]) =>
    sorted(name, db.generations, db.others)
  );
  return { databases, stray };
}

/** Lists the store (or just `name`): the databases that have snapshots or segments. */
export async function readCatalog(store: Store, name?: string): Promise<DatabaseCatalog[]> {
  const { databases } = await readStore(store, name ? [name] : []);
  return databases.filter((db) => db.generations.length > 0);
}

/** The time range a generation can restore: from its first snapshot to its last object. */
export function restorableRange(g: Generation): { from: number; to: number } | null {
  if (g.snapshots.length === 0) return null;
  const last = Math.max(g.snapshots.at(-1)!.time, g.segments.at(-1)?.time ?? 0);
  return { from: g.snapshots[0].time, to: last };
}

/** The time of a generation's last object. */
export function lastTime(g: Generation): number {
  return Math.max(g.snapshots.at(-1)?.time ?? 0, g.segments.at(-1)?.time ?? 0);
}

/**
 * Runs of generation numbers (inclusive `[from, to]`) from the first stored one up to `upTo`
 * (default: the last stored) that have no object. walsync numbers generations consecutively, so
 * each one was removed by something else.
 */
export function missingGenerations(db: DatabaseCatalog, upTo = 0): [number, number][] {
  const numbers = db.generations.map((g) => g.generation);
  if (numbers.length === 0) return [];
  const runs: [number, number][] = [];
  const ends = [...numbers, Math.max(upTo, numbers.at(-1)!) + 1];
  for (let i = 1; i < ends.length; i++) {
    if (ends[i] > ends[i - 1] + 1) runs.push([ends[i - 1] + 1, ends[i] - 1]);
  }
  return runs;
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
