/**
 * Retention rules: which objects of a database can go once history before a horizon (now − retention)
 * is no longer wanted. Pure: it reads a {@link DatabaseHistory} and returns a plan; nothing here does I/O.
 *
 * The rule (docs/design.md §11): let S be the newest snapshot at or before the horizon. Every
 * point in time from S on keeps exactly the objects a restore of it reads before pruning (S's
 * generation from S on, and every later generation untouched), so every restore inside the window
 * gives the same bytes as before. What goes: every generation before S's generation (all of them end
 * before S, since object times strictly increase within a database), and in S's generation the
 * snapshots and segments before S. Without such an S (no snapshot is old enough) nothing goes. The
 * newest generation's newest snapshot and everything after it are never in the plan (they are at or
 * after S), which is all a running watcher appends to.
 * @module
 */
import type { BackupObject } from "../layout.ts";
import type { DatabaseHistory, GenerationHistory } from "../log/history.ts";
import { lastTime } from "../log/history.ts";

/** What retention removes from one database. */
export interface RetentionPlan {
  name: string;
  /** The horizon the plan was made for (ms since the epoch). */
  horizon: number;
  /** The snapshot restores from the horizon on start from (the oldest object kept); null: nothing goes. */
  keep: BackupObject | null;
  /** Generations removed entirely, oldest first (snapshots listed here, segments streamed when deleted). */
  wholeGenerations: GenerationHistory[];
  /** In the kept snapshot's generation: its snapshots before the kept one, oldest first. */
  olderSnapshots: BackupObject[];
  /** In the kept snapshot's generation: whether segments before the kept snapshot exist (streamed when deleted). */
  olderSegments: boolean;
  /** The oldest restorable time after the plan is carried out (the kept snapshot's time), or null. */
  restorableFrom: number | null;
}

/** The newest snapshot at or before `horizon`, over all generations (the latest in time, then generation). */
function newestSnapshotAtOrBefore(db: DatabaseHistory, horizon: number): BackupObject | null {
  let best: BackupObject | null = null;
  for (const g of db.generations) {
    const s = g.snapshots.findLast((o) => o.time <= horizon);
    if (s && (!best || s.time >= best.time)) best = s;
  }
  return best;
}

/**
 * Plans what retention removes from `db` for `horizon` (ms; -Infinity or 0 keeps everything).
 * A generation before the kept one that still has an object after the kept snapshot (only possible
 * with clocks set back across hosts) is kept whole, to be safe.
 */
export function planRetention(db: DatabaseHistory, horizon: number): RetentionPlan {
  const keep = horizon > 0 ? newestSnapshotAtOrBefore(db, horizon) : null;
  const plan: RetentionPlan = {
    name: db.name,
    horizon,
    keep,
    wholeGenerations: [],
    olderSnapshots: [],
    olderSegments: false,
    restorableFrom: null,
  };
  if (!keep) {
    const first = db.generations.find((g) => g.snapshots.length)?.snapshots[0];
    plan.restorableFrom = first?.time ?? null;
    return plan;
  }
  plan.restorableFrom = keep.time;
  for (const g of db.generations) {
    if (g.generation < keep.generation && lastTime(g) < keep.time) plan.wholeGenerations.push(g);
    if (g.generation !== keep.generation) continue;
    plan.olderSnapshots = g.snapshots.filter((s) => s.time < keep.time);
    plan.olderSegments = g.segments !== null && g.segments.first.time < keep.time;
  }
  return plan;
}

/** Whether carrying out `plan` deletes anything. */
export function planDeletes(plan: RetentionPlan): boolean {
  return plan.wholeGenerations.length > 0 || plan.olderSnapshots.length > 0 || plan.olderSegments;
}

/**
 * Whether `object` is below the retention horizon of `keep` (the snapshot a prune kept): in an older
 * generation, or before it in its own. Such objects are gone on purpose, or about to be.
 */
export function belowHorizon(object: BackupObject, keep: { generation: number; time: number }): boolean {
  return object.generation < keep.generation ||
    (object.generation === keep.generation && object.time < keep.time);
}
