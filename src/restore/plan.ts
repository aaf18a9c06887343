/**
 * Choosing what to restore: the generation, snapshot and segments for a point in time (DESIGN.md §6).
 * @module
 */
import { type DatabaseCatalog, type Generation, restorableRange } from "../catalog.ts";
import { notFoundError } from "../errors.ts";
import type { BackupObject } from "../layout.ts";

/** The objects a restore will read, in order. */
export interface RestorePlan {
  name: string;
  generation: number;
  snapshot: BackupObject;
  segments: BackupObject[];
  /** The time of the state the restore produces (the last object applied). */
  time: number;
}

/**
 * Plans the restore of `catalog` at `target` (ms since epoch; latest when undefined): the newest
 * generation that has a snapshot at or before the target, its newest snapshot at or before the
 * target, and its later segments up to the target.
 * @throws WalsyncError (not found) when nothing covers the target.
 */
export function planRestore(catalog: DatabaseCatalog, target?: number): RestorePlan {
  const t = target ?? Number.POSITIVE_INFINITY;
  const candidates = catalog.generations.filter((g) => g.snapshots.length > 0 && g.snapshots[0].time <= t);
  const chosen: Generation | undefined = candidates.at(-1);
  if (!chosen) {
    const earliest = catalog.generations.map(restorableRange).find((r) => r !== null);
    if (!earliest) throw notFoundError(`no snapshot of "${catalog.name}" exists: nothing to restore`);
    throw notFoundError(
      `${new Date(t).toISOString()} is before the first backup of "${catalog.name}" ` +
        `(earliest restorable time: ${new Date(earliest.from).toISOString()})`,
    );
  }
  const snapshot = chosen.snapshots.filter((s) => s.time <= t).at(-1)!;
  const segments = chosen.segments.filter((s) => s.time > snapshot.time && s.time <= t);
  return {
    name: catalog.name,
    generation: chosen.generation,
    snapshot,
    segments,
    time: segments.at(-1)?.time ?? snapshot.time,
  };
}
