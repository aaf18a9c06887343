/**
 * Choosing what to restore for a point in time (docs/design.md §6): the generation, snapshot and
 * segments, and what may replace them if one of their objects turns out to be damaged.
 *
 * The target belongs to the generation whose objects reach closest to it (at or before it). Within
 * that generation every snapshot at or before the target leads to the same state (a later snapshot
 * only shortens the replay), so they are tried newest first. Another generation may stand in only
 * if it covers the target too: a restore never silently returns an earlier state than asked for.
 * @module
 */
import { notFoundError } from "../errors.ts";
import { type BackupObject, formatGeneration } from "../layout.ts";
import {
  type DatabaseHistory,
  type GenerationHistory,
  lastTime,
  missingGenerations,
  restorableRange,
} from "../log/history.ts";
import {
  type Damage,
  missingGenerations as missingGenerationsDamage,
  missingStartSnapshot,
} from "./damage.ts";
import type { SnapshotObject } from "./apply.ts";
import type { StateHint } from "./state_hint.ts";

/**
 * The objects one restore attempt reads: a snapshot, then the generation's segments after it up to
 * `upTo`, streamed when replayed (a plan never holds the list of its segments).
 */
export interface RestorePlan {
  name: string;
  generation: number;
  snapshot: SnapshotObject;
  /** The target time (ms; +Infinity for the latest state): segments after it are not applied. */
  upTo: number;
  /** The time of the state the restore produces (the last object applied). */
  time: number;
  /** True when its generation has no object after the target: the listing ends where this plan does. */
  atEnd: boolean;
}

/** The ways to restore a point in time, in the order to try them. */
export interface RestoreChoice {
  /** Plans from the target's generation, newest snapshot first; empty when `damage` rules them out. */
  plans: RestorePlan[];
  /** Plans from other generations that also cover the target, best first. */
  fallbacks: RestorePlan[];
  /** Damage the listing alone shows in the target's generation (e.g. its starting snapshot is gone). */
  damage: Damage | null;
  /** The best older state when the target cannot be restored exactly: a generation ending before it. */
  older: { generation: number; time: number } | null;
}

/** The last of `objects` (in time order) at or before `t`. */
function lastAtOrBefore(objects: BackupObject[], t: number): BackupObject | undefined {
  return objects.findLast((o) => o.time <= t);
}

/**
 * The time of the state generation `g` holds at `t`: its last object at or before `t` (the history
 * was read with `t` as its target, so the segment summary knows its last segment at or before it).
 */
function reach(g: GenerationHistory, t: number): number | undefined {
  const times = [lastAtOrBefore(g.snapshots, t)?.time, g.segments?.lastAtOrBefore?.time];
  const known = times.filter((x) => x !== undefined);
  return known.length ? Math.max(...known) : undefined;
}

/** One plan per snapshot of `g` at or before `t`, newest snapshot first (nothing listed per plan). */
function plansOf(name: string, g: GenerationHistory, t: number): RestorePlan[] {
  const atEnd = lastTime(g) <= t;
  const lastSegment = g.segments?.lastAtOrBefore?.time ?? 0;
  return g.snapshots.filter((s) => s.time <= t).reverse().map((snapshot) => ({
    name,
    generation: g.generation,
    snapshot: snapshot as SnapshotObject,
    upTo: t,
    time: Math.max(snapshot.time, lastSegment),
    atEnd,
  }));
}

/**
 * Damage the listing shows for restoring generation `g` at `t`: no snapshot to start from, or (when
 * `g` ends before the target) the next generation is gone although a later one is known.
 */
function listingDamage(
  db: DatabaseHistory,
  g: GenerationHistory,
  t: number,
  hint: StateHint | null,
): Damage | null {
  if (!g.snapshots.some((s) => s.time <= t)) {
    const first = [g.snapshots[0], g.segments?.first].filter((o) => o !== undefined)
      .sort((a, b) => a.time - b.time)[0];
    return missingStartSnapshot(db.name, g.generation, `no snapshot at or before ${first.key}`);
  }
  if (lastTime(g) > t) return null;
  const gap = missingGenerations(db, hint?.generation ?? 0).find(([from]) => from === g.generation + 1);
  if (!gap) return null;
  return missingGenerationsDamage(
    db.name,
    gap[0],
    gap[1],
    `a later generation is ${hint?.generation === gap[1] ? "recorded in state.json" : "stored"}`,
  );
}

/**
 * Plans the restore of `db` at `target` (ms since epoch; latest when undefined).
 * @throws WalsyncError (not found) when the target is before every object.
 */
export function chooseRestore(
  db: DatabaseHistory,
  target?: number,
  hint: StateHint | null = null,
): RestoreChoice {
  const t = target ?? Number.POSITIVE_INFINITY;
  const reached = db.generations
    .map((g) => ({ g, reach: reach(g, t) }))
    .filter((r): r is { g: GenerationHistory; reach: number } => r.reach !== undefined)
    .sort((a, b) => b.reach - a.reach || b.g.generation - a.g.generation);
  if (reached.length === 0) throw beforeFirstBackup(db, t);
  const [chosen, ...others] = reached.map((r) => r.g);
  const damage = listingDamage(db, chosen, t, hint);
  const covering = others.filter((g) => Number.isFinite(t) && lastTime(g) >= t);
  const older = others.filter((g) => !covering.includes(g) && g.snapshots.some((s) => s.time <= t))[0];
  return {
    plans: damage ? [] : plansOf(db.name, chosen, t),
    fallbacks: covering.flatMap((g) => plansOf(db.name, g, t)),
    damage,
    older: older ? { generation: older.generation, time: reach(older, t)! } : null,
  };
}

/** The error for a target before the first backup. */
function beforeFirstBackup(db: DatabaseHistory, t: number) {
  const earliest = db.generations.map(restorableRange).find((r) => r !== null);
  if (!earliest) return notFoundError(`no snapshot of "${db.name}" exists: nothing to restore`);
  return notFoundError(
    `${new Date(t).toISOString()} is before the first backup of "${db.name}" ` +
      `(earliest restorable time: ${new Date(earliest.from).toISOString()})`,
  );
}

/** Describes a plan for log lines: its snapshot and generation. */
export function describePlan(plan: RestorePlan): string {
  return `generation ${formatGeneration(plan.generation)} (snapshot ${plan.snapshot.key})`;
}
