/**
 * What page sets add to the history readers plan with (docs/design.md §11.1): a generation whose
 * segments were compacted away still reaches as far as its page sets, and a restore applies the
 * page sets that {@link restorePath} picks before the segments after them.
 * @module
 */
import type { DatabaseHistory } from "../log/history.ts";
import type { Store } from "../storage/store.ts";
import { listPageSets, type PageSetObject } from "./key.ts";

/** The page sets of one generation (every level), in key order. */
export async function pageSetsOf(store: Store, name: string, generation: number): Promise<PageSetObject[]> {
  const sets: PageSetObject[] = [];
  for await (const set of listPageSets(store, name, generation)) sets.push(set);
  return sets;
}

/**
 * Folds the page sets of `db` into its generations' segment summaries (one listing of
 * `<name>/pages/`): a set counts as an object at the time of its last segment, so a generation
 * whose old segments were compacted away still reaches that far, and a target between two page
 * sets is planned from the last one at or before it.
 */
export async function addPageSetReach(store: Store, db: DatabaseHistory, target: number): Promise<void> {
  const byGeneration = new Map(db.generations.map((g) => [g.generation, g]));
  for await (const set of listPageSets(store, db.name)) {
    const g = byGeneration.get(set.generation);
    if (!g) continue;
    const s = g.segments ??= { count: 0, bytes: 0, first: set, last: set, lastAtOrBefore: null };
    if (set.firstTime < s.first.time) s.first = set;
    if (set.time > s.last.time) s.last = set;
    if (set.time <= target && set.time > (s.lastAtOrBefore?.time ?? -Infinity)) s.lastAtOrBefore = set;
  }
}
