/**
 * How `verify` walks a compacted generation (docs/design.md §11.1): the chain is followed through
 * the segments where all of a level-1 set's segments are still stored, and through the level-1 set
 * where compaction deleted some or all of them. Every page set not walked on the chain is still
 * checked on its own (metadata and, unless quick, content).
 * @module
 */
import type { BackupObject } from "../layout.ts";
import { type GenerationHistory, replayOrder, segmentsOf } from "../log/history.ts";
import { mapOrdered } from "../log/prefetch.ts";
import type { Inspection } from "../restore/apply.ts";
import type { Damage } from "../restore/damage.ts";
import { pageSetsOf } from "./history.ts";
import type { Store } from "../storage/store.ts";
import type { PageSetObject } from "./key.ts";
import { inspectPageSet } from "./replay.ts";

/**
 * Yields `segments` (one generation, key order), with each run of segments that a level-1 set of
 * `level1` (time order) replaces swapped for that set when the run is incomplete. Keys of the sets
 * yielded are added to `onChain`.
 */
export async function* substituteCompacted(
  segments: AsyncIterable<BackupObject>,
  level1: PageSetObject[],
  onChain: Set<string>,
): AsyncGenerator<BackupObject> {
  let i = 0;
  let held: BackupObject[] = [];
  // Ends set i: its segments if they are all there (duplicates make more), else the set itself.
  const finish = function* (): Generator<BackupObject> {
    const set = level1[i++];
    if (held.length >= set.lastIndex - set.firstIndex + 1) {
      yield* held;
    } else {
      onChain.add(set.key);
      yield set;
    }
    held = [];
  };
  for await (const segment of segments) {
    while (i < level1.length && level1[i].time < segment.time) yield* finish();
    const set = level1[i];
    if (set && set.firstTime <= segment.time) held.push(segment);
    else yield segment;
  }
  while (i < level1.length) yield* finish();
}

/** A page set's inspection in the shape the chain walk reads. */
export async function inspectAsChainItem(
  store: Store,
  set: PageSetObject,
  quick: boolean,
): Promise<Inspection> {
  const { meta, damage, contentChecked } = await inspectPageSet(store, set, quick);
  return { object: set, meta, damage, contentChecked: quick || contentChecked };
}

/** A generation's objects in chain order for `verify`, with page sets where segments were compacted. */
export interface CompactedChain {
  objects: AsyncIterable<BackupObject>;
  /** Checks one object of `objects` on its own (page sets here, the rest by `inspectOther`). */
  inspect(object: BackupObject, inspectOther: () => Promise<Inspection>): Promise<Inspection>;
  /** After the walk: the damage of the page sets not walked on the chain, each checked on its own. */
  restDamage(limit: number): Promise<Damage[]>;
}

/**
 * The chain `verify` walks for generation `g` of `name` (docs/design.md §11.1): its snapshots, and
 * its segments with each incomplete run a level-1 set replaces swapped for that set.
 */
export async function compactedChain(
  store: Store,
  name: string,
  g: GenerationHistory,
  quick: boolean,
): Promise<CompactedChain> {
  const sets = g.pages ? await pageSetsOf(store, name, g.generation) : [];
  const level1 = sets.filter((s) => s.level === 1).sort((a, b) => a.time - b.time);
  const walked = new Set<string>();
  const segments = g.segments ? segmentsOf(store, name, g.generation) : (async function* () {})();
  return {
    objects: replayOrder(g.snapshots, substituteCompacted(segments, level1, walked)),
    inspect: (object, inspectOther) =>
      object.kind === "pages" ? inspectAsChainItem(store, object as PageSetObject, quick) : inspectOther(),
    async restDamage(limit) {
      const rest = (async function* () {
        yield* sets.filter((s) => !walked.has(s.key));
      })();
      const damages: Damage[] = [];
      for await (const inspection of mapOrdered(rest, limit, (s) => inspectPageSet(store, s, quick))) {
        if (inspection.damage) damages.push(inspection.damage);
      }
      return damages;
    },
  };
}
