/**
 * How `verify` walks a compacted generation (docs/design.md §11.1): the chain is followed through
 * the segments where all of a level-1 set's segments are still stored, and through the level-1 set
 * where compaction deleted some or all of them. Every page set not walked on the chain is still
 * checked on its own (metadata and, unless quick, content).
 * @module
 */
import type { BackupObject } from "../layout.ts";
import type { Inspection } from "../restore/apply.ts";
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
