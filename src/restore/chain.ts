/**
 * The chain of a generation, judged from the inspections of its objects (see `inspectObject`):
 * which objects break it, and which time ranges it can restore. Pure: no I/O.
 *
 * The chain is followed through the objects' metadata, so one damaged object does not hide the
 * state of the objects after it: a segment whose content is corrupted but whose metadata is readable
 * still tells where the next segment must start, and only the damaged segment is blamed.
 * @module
 */
import type { BackupObject } from "../layout.ts";
import type { SegmentMeta, SnapshotMeta } from "../metadata.ts";
import {
  type Inspection,
  type ReplayState,
  segmentContinuity,
  snapshotContinuity,
  stateAfterSegment,
  stateAfterSnapshot,
} from "./apply.ts";
import { type Damage, damageOf, missingSegments, missingStartSnapshot } from "./damage.ts";
import { pageSetContinuity, type PageSetMeta, stateAfterPageSet } from "../compact/meta.ts";

/** A time range (ms since the epoch, inclusive) in which every point can be restored. */
export interface TimeRange {
  from: number;
  to: number;
}

/** What the chain of one generation allows. */
export interface ChainReport {
  /** Restorable time ranges, oldest first (more than one when damage breaks the chain). */
  ranges: TimeRange[];
  /** Damaged or missing objects, in chain order; each is blamed once. */
  damages: Damage[];
  /** Objects that are intact themselves but cannot be restored because the chain before them is broken. */
  unreachable: number;
  /** The index the next segment would have after the last object; null if the end is unknown. */
  nextIndex: number | null;
}

/** Walking state: the chain as the metadata describes it, and the range being extended. */
interface Walk {
  name: string;
  generation: number;
  /** The chain's state after the previous object; null before the first one or after unreadable metadata. */
  chain: ReplayState | null;
  /** Whether the chain up to here is restorable (an intact start and nothing broken since). */
  open: TimeRange | null;
  started: boolean;
  report: ChainReport;
}

/**
 * Judges the chain of generation `generation` of database `name` from `inspections` (one per object
 * on the chain, in replay order; duplicates already set aside), streamed: only the walk's state is kept.
 */
export async function analyzeChain(
  name: string,
  generation: number,
  inspections: AsyncIterable<Inspection>,
): Promise<ChainReport> {
  const walk: Walk = {
    name,
    generation,
    chain: null,
    open: null,
    started: false,
    report: { ranges: [], damages: [], unreachable: 0, nextIndex: null },
  };
  for await (const inspection of inspections) {
    if (inspection.object.kind === "snapshot") onSnapshot(walk, inspection);
    else if (inspection.object.kind === "pages") onPageSet(walk, inspection);
    else onSegment(walk, inspection);
    walk.started = true;
  }
  closeRange(walk);
  walk.report.nextIndex = walk.chain?.nextIndex ?? null;
  return walk.report;
}

function closeRange(walk: Walk): void {
  if (walk.open) walk.report.ranges.push(walk.open);
  walk.open = null;
}

function extendRange(walk: Walk, time: number): void {
  if (walk.open) walk.open.to = time;
  else walk.report.unreachable++;
}

/** Damage of an object that does not continue the chain before it. */
function brokenChain(object: BackupObject, why: string, index?: number): Damage {
  return damageOf(object.key, object.kind, "chain", `does not continue the chain of its generation: ${why}`, {
    generation: object.generation,
    index,
  });
}

/**
 * A snapshot: usable if intact and (when the chain before it is known) continuous with it. A
 * damaged snapshot does not break the chain: the segments around it do not depend on it.
 */
function onSnapshot(walk: Walk, { object, meta, damage }: Inspection): void {
  if (!meta) {
    walk.report.damages.push(damage!);
    return;
  }
  const snap = meta as SnapshotMeta;
  let problem = damage;
  if (walk.chain && snap.segmentsBefore > walk.chain.nextIndex) {
    // Segments are gone just before this snapshot; it starts the chain anew.
    const why = `the next object, ${object.key}, is a snapshot taken after ${snap.segmentsBefore} segment(s)`;
    walk.report.damages.push(
      missingSegments(walk.name, walk.generation, walk.chain.nextIndex, snap.segmentsBefore - 1, why),
    );
    closeRange(walk);
    walk.chain = null;
  }
  if (!problem && walk.chain) {
    const why = snapshotContinuity(walk.chain, snap);
    if (why) {
      problem = brokenChain(object, why);
    }
  }
  if (!walk.started && snap.segmentsBefore > 0) {
    const why = `the first snapshot, ${object.key}, comes after segment(s)`;
    walk.report.damages.push(missingStartSnapshot(walk.name, walk.generation, why));
  }
  if (problem) {
    walk.report.damages.push(problem);
  } else if (walk.open) {
    walk.open.to = object.time;
  } else {
    walk.open = { from: object.time, to: object.time };
  }
  walk.chain ??= stateAfterSnapshot(snap);
}

/** A segment: usable if intact, continuous, and the chain before it is restorable. */
function onSegment(walk: Walk, { object, meta, damage }: Inspection): void {
  if (!meta) {
    walk.report.damages.push(damage!);
    closeRange(walk);
    walk.chain = null;
    return;
  }
  const seg = meta as SegmentMeta;
  let problem = damage;
  if (!walk.started) {
    const why = `its first object is segment #${seg.index}, ${object.key}`;
    walk.report.damages.push(missingStartSnapshot(walk.name, walk.generation, why));
  } else if (walk.chain && seg.index > walk.chain.nextIndex) {
    const why = `the chain jumps from #${walk.chain.nextIndex - 1} to #${seg.index}, ${object.key}`;
    walk.report.damages.push(
      missingSegments(walk.name, walk.generation, walk.chain.nextIndex, seg.index - 1, why),
    );
    closeRange(walk);
  } else if (walk.chain) {
    const why = segmentContinuity(walk.chain, seg);
    if (why && !problem) {
      problem = brokenChain(object, why, seg.index);
    }
  }
  if (problem) {
    walk.report.damages.push(problem);
    closeRange(walk);
  } else {
    extendRange(walk, object.time);
  }
  walk.chain = stateAfterSegment(seg);
}

/**
 * A page set standing in for segments compaction deleted (docs/design.md §11.1): usable if intact,
 * starting exactly where the chain ends, and the chain before it is restorable.
 */
function onPageSet(walk: Walk, { object, meta, damage }: Inspection): void {
  if (!meta) {
    walk.report.damages.push(damage!);
    closeRange(walk);
    walk.chain = null;
    return;
  }
  const set = meta as PageSetMeta;
  let problem = damage;
  if (!walk.started) {
    const why = `its first object is a page set from segment #${set.firstIndex}, ${object.key}`;
    walk.report.damages.push(missingStartSnapshot(walk.name, walk.generation, why));
  } else if (walk.chain && set.firstIndex > walk.chain.nextIndex) {
    const why = `the chain jumps from #${
      walk.chain.nextIndex - 1
    } to page set #${set.firstIndex}, ${object.key}`;
    walk.report.damages.push(
      missingSegments(walk.name, walk.generation, walk.chain.nextIndex, set.firstIndex - 1, why),
    );
    closeRange(walk);
  } else if (walk.chain) {
    const why = pageSetContinuity(walk.chain, set);
    if (why && !problem) problem = brokenChain(object, why, set.firstIndex);
  }
  if (problem) {
    walk.report.damages.push(problem);
    closeRange(walk);
  } else {
    extendRange(walk, object.time);
  }
  walk.chain = stateAfterPageSet(set);
}
