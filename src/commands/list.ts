/**
 * `walsync list`: what is backed up, per database: its generations, latest snapshot and the time
 * range it can be restored to.
 * @module
 */
import { formatAge } from "../duration.ts";
import { readAllHistories, restorableRange } from "../log/history.ts";
import type { Store } from "../storage/store.ts";
import { readMark, retentionKey } from "../lifecycle/mark.ts";

/** One generation in `list --json`. */
export interface ListedGeneration {
  generation: number;
  snapshots: number;
  segments: number;
  /** Compacted page sets (docs/design.md §11.1). */
  pageSets: number;
  /** Total bytes stored for this generation. */
  bytes: number;
  /** Restorable time range (ISO 8601), or null if the generation has no snapshot. */
  restorableFrom: string | null;
  restorableTo: string | null;
}

/** One database in `list --json` (shape documented in the README; stable). */
export interface ListedDatabase {
  name: string;
  latestSnapshot: { key: string; generation: number; time: string; size: number } | null;
  /** The newest generation (the one a latest restore uses). */
  generation: number | null;
  restorableFrom: string | null;
  restorableTo: string | null;
  generations: ListedGeneration[];
  /** Objects (snapshots, segments, page sets) and their stored bytes, over the listed generations. */
  objects: number;
  bytes: number;
  /** Seconds since the newest object (snapshot or segment) was written: a stale backup shows here. */
  newestAgeSeconds: number | null;
}

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

/**
 * Lists every database in `store` that has snapshots or segments, from one streamed listing: per
 * database, only its snapshots and a summary of its segments are kept, never every key.
 */
export async function listCommand(store: Store): Promise<ListedDatabase[]> {
  const databases: ListedDatabase[] = [];
  for await (const db of readAllHistories(store, () => {})) {
    if (db.generations.length === 0) continue;
    // After a prune, history below its mark is gone (or about to be): restorable from the kept snapshot.
    const mark = db.others.some((o) => o.key === retentionKey(db.name))
      ? await readMark(store, db.name)
      : null;
    if (mark) db.generations = db.generations.filter((g) => g.generation >= mark.generation);
    const floor = mark ? Date.parse(mark.restorableFrom) : -Infinity;
    const generations = db.generations.map((g): ListedGeneration => {
      const range = restorableRange(g);
      return {
        generation: g.generation,
        snapshots: g.snapshots.length,
        segments: g.segments?.count ?? 0,
        pageSets: g.pages?.count ?? 0,
        bytes: g.snapshots.reduce((n, o) => n + o.size, (g.segments?.bytes ?? 0) + (g.pages?.bytes ?? 0)),
        restorableFrom: iso(range?.from),
        restorableTo: iso(range?.to),
      };
    });
    const withSnapshots = db.generations.filter((g) => g.snapshots.length > 0);
    const newest = withSnapshots.at(-1);
    const latest = newest?.snapshots.at(-1);
    const ranges = withSnapshots.map(restorableRange).filter((r) => r !== null);
    databases.push({
      name: db.name,
      latestSnapshot: latest
        ? { key: latest.key, generation: latest.generation, time: iso(latest.time)!, size: latest.size }
        : null,
      generation: newest?.generation ?? null,
      restorableFrom: iso(
        ranges.length ? Math.max(floor, Math.min(...ranges.map((r) => r.from))) : undefined,
      ),
      restorableTo: iso(ranges.length ? Math.max(...ranges.map((r) => r.to)) : undefined),
      generations,
      objects: generations.reduce((n, g) => n + g.snapshots + g.segments + g.pageSets, 0),
      bytes: generations.reduce((n, g) => n + g.bytes, 0),
      newestAgeSeconds: newestAge(
        db.generations.flatMap((g) => [...g.snapshots, ...(g.segments ? [g.segments.last] : [])]),
      ),
    });
  }
  return databases.sort((a, b) => (a.name < b.name ? -1 : 1));
}

function newestAge(objects: { time: number }[]): number | null {
  const newest = objects.reduce((t, o) => Math.max(t, o.time), -Infinity);
  return objects.length ? Math.max(0, Math.round((Date.now() - newest) / 1000)) : null;
}

/** Formats the list as an aligned text table for humans. */
export function formatListTable(databases: ListedDatabase[]): string {
  if (databases.length === 0) return "no backups found\n";
  const rows = [[
    "NAME",
    "GENERATION",
    "LATEST SNAPSHOT",
    "SIZE",
    "SEGMENTS",
    "RESTORABLE FROM",
    "RESTORABLE TO",
    "NEWEST",
  ]];
  for (const db of databases) {
    const newest = db.generations.find((g) => g.generation === db.generation);
    rows.push([
      db.name,
      db.generation === null ? "-" : String(db.generation).padStart(8, "0"),
      db.latestSnapshot?.time ?? "-",
      db.latestSnapshot ? String(db.latestSnapshot.size) : "-",
      String(newest?.segments ?? 0),
      db.restorableFrom ?? "-",
      db.restorableTo ?? "-",
      db.newestAgeSeconds === null ? "-" : `${formatAge(db.newestAgeSeconds)} ago`,
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i])).join("  ").trimEnd()).join("\n") + "\n";
}
