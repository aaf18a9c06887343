/**
 * Carrying out retention for one database: list its history (one streamed pass), plan with
 * {@link planRetention}, confirm the snapshot that stays, record the mark, then delete oldest first
 * in batches of up to 1000 keys (one multi-object delete each), streaming the segments to delete
 * instead of holding them. A prune killed at any moment has removed a prefix of what it planned,
 * behind a mark that already hides it from readers; the next run deletes the rest.
 * @module
 */
import { notFoundError } from "../errors.ts";
import type { BackupObject } from "../layout.ts";
import * as log from "../log.ts";
import { readHistory, replayOrder, segmentsOf } from "../log/history.ts";
import { cleanUploadLeftovers } from "../storage/file.ts";
import { MAX_DELETE_BATCH, type Store } from "../storage/store.ts";
import { readMark, writeMark } from "./mark.ts";
import { belowHorizon, planDeletes, planRetention, type RetentionPlan } from "./retention.ts";
import { listPageSets } from "../compact/key.ts";

/** What retention did (or, on a dry run, would do) to one database. */
export interface RetentionResult {
  name: string;
  /** The horizon (ISO 8601), or null when everything is kept. */
  horizon: string | null;
  /** Objects deleted (would be, on a dry run), and their stored bytes. */
  deletedObjects: number;
  deletedBytes: number;
  /** The oldest restorable time afterwards (ISO 8601), or null when nothing is restorable. */
  restorableFrom: string | null;
  /** Leftovers of interrupted uploads removed (file:// only). */
  leftovers: number;
  dryRun: boolean;
}

/** Options of {@link enforceRetention}. */
export interface EnforceOptions {
  /** Only report: delete nothing, write nothing. */
  dryRun?: boolean;
  /** Called with each object deleted (or that would be), oldest first. */
  onObject?: (object: BackupObject) => void;
  /** Keys per multi-object delete (default and maximum 1000). */
  batchSize?: number;
}

/** WALSYNC_PRUNE_BATCH: fewer keys per multi-object delete (tests use it to stop a prune between batches). */
function envBatch(): number | undefined {
  const n = Number(Deno.env.get("WALSYNC_PRUNE_BATCH"));
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** The objects `plan` removes, oldest first, segments streamed from the listing. */
async function* doomed(store: Store, plan: RetentionPlan): AsyncGenerator<BackupObject> {
  for (const g of plan.wholeGenerations) {
    const segments = g.segments ? segmentsOf(store, plan.name, g.generation) : none<BackupObject>();
    yield* replayOrder(g.snapshots, segments);
  }
  const keep = plan.keep;
  if (!keep) return;
  const segments = plan.olderSegments
    ? segmentsOf(store, plan.name, keep.generation, -1, keep.time - 1)
    : none<BackupObject>();
  yield* replayOrder(plan.olderSnapshots, segments);
}

async function* none<T>(): AsyncGenerator<T> {}

/**
 * The page sets `plan` removes (docs/design.md §11.1): those of removed generations, and in the kept
 * snapshot's generation those before it (a set never spans a snapshot, so its last segment is
 * before the kept snapshot too).
 */
async function* doomedPageSets(store: Store, plan: RetentionPlan): AsyncGenerator<BackupObject> {
  const keep = plan.keep;
  if (!keep) return;
  for await (const set of listPageSets(store, plan.name)) {
    if (set.generation > keep.generation) return;
    const whole = plan.wholeGenerations.some((g) => g.generation === set.generation);
    if (whole || belowHorizon(set, keep)) yield set;
  }
}

/**
 * Applies retention with `horizon` (ms since the epoch; 0 or less keeps everything) to database
 * `name`. Never touches the kept snapshot or anything after it (docs/design.md §11).
 */
export async function enforceRetention(
  store: Store,
  name: string,
  horizon: number,
  options: EnforceOptions = {},
): Promise<RetentionResult> {
  const dryRun = options.dryRun ?? false;
  const batchSize = Math.min(options.batchSize ?? envBatch() ?? MAX_DELETE_BATCH, MAX_DELETE_BATCH);
  // A previous prune's mark wins over a longer retention: below it, history may be half deleted.
  const previous = await readMark(store, name);
  const effective = Math.max(horizon, previous ? Date.parse(previous.restorableFrom) : 0);
  const db = await readHistory(store, name);
  if (!db) throw notFoundError(`no backup of "${name}" in ${store.url}`);
  const plan = planRetention(db, effective);
  const result: RetentionResult = {
    name,
    horizon: effective > 0 ? iso(effective) : null,
    deletedObjects: 0,
    deletedBytes: 0,
    restorableFrom: iso(plan.restorableFrom),
    leftovers: dryRun ? 0 : await cleanUploadLeftovers(store, `${name}/`),
    dryRun,
  };
  if (!plan.keep || !planDeletes(plan)) return result;
  const keep = plan.keep;
  // Nothing is deleted unless the snapshot restores will start from is there, whole and checksummed.
  const info = await store.head(keep.key);
  if (!info || info.size !== keep.size || !info.metadata.sha256) {
    log.warn(`${name}: retention skipped: the snapshot to keep, ${keep.key}, cannot be confirmed`);
    result.restorableFrom = iso(db.generations.find((g) => g.snapshots.length)?.snapshots[0].time ?? null);
    return result;
  }
  if (!dryRun) {
    if (previous?.snapshot !== keep.key) {
      await writeMark(store, name, {
        horizon: new Date(effective).toISOString(),
        generation: keep.generation,
        snapshot: keep.key,
        restorableFrom: new Date(keep.time).toISOString(),
      });
    }
  }
  let batch: BackupObject[] = [];
  const flush = async () => {
    if (!dryRun && batch.length) await store.deleteMany(batch.map((o) => o.key));
    for (const o of batch) {
      result.deletedObjects++;
      result.deletedBytes += o.size;
    }
    batch = [];
  };
  // Page sets first: a pass killed after them still has segments to delete, so the next one comes back.
  for (const objects of [doomedPageSets(store, plan), doomed(store, plan)]) {
    for await (const object of objects) {
      options.onObject?.(object);
      batch.push(object);
      if (batch.length >= batchSize) await flush();
    }
  }
  await flush();
  log.info(
    `${name}: retention ${dryRun ? "would delete" : "deleted"} ${result.deletedObjects} object(s), ` +
      `${result.deletedBytes} bytes; restorable from ${result.restorableFrom}`,
  );
  return result;
}
