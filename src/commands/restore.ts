/**
 * `walsync restore`: rebuild a database from its backups into a temporary file beside the output,
 * verify it (every object, then `PRAGMA integrity_check`), fsync, and only then move it into place.
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { resolve } from "node:path";
import {
  asUserError,
  corruptError,
  ExitCode,
  notFoundError,
  osErrorReason,
  WalsyncError,
} from "../errors.ts";
import type { SegmentObject } from "../restore/apply.ts";
import { formatGeneration, validateName } from "../layout.ts";
import * as log from "../log.ts";
import { fileWriter, replaySegment, replaySnapshot, type ReplayState } from "../restore/apply.ts";
import { type DatabaseHistory, segmentsOf } from "../log/history.ts";
import { readRestoreHistory } from "../log/restore_history.ts";
import { prefetch, withMeta } from "../log/prefetch.ts";
import { chainOrder } from "../log/duplicates.ts";
import { DamageError, missingEverything } from "../restore/damage.ts";
import { chooseRestore, describePlan, type RestoreChoice, type RestorePlan } from "../restore/plan.ts";
import { hintedTail, type HintReading, readStateHint, type StateHint } from "../restore/state_hint.ts";
import { withProgress } from "../progress.ts";
import { onInterrupt } from "../shutdown.ts";
import { checkOutputDir, createTemp, inspectOutput, moveIntoPlace, outputExists } from "../restore/output.ts";
import type { Store } from "../storage/store.ts";
import { retainedView } from "../lifecycle/mark.ts";
import { pageSetsOf } from "../compact/history.ts";
import { restorePath } from "../compact/levels.ts";
import { replayPageSet } from "../compact/replay.ts";
import { parsePageSetKey } from "../compact/key.ts";

/** Options of `restore`. */
export interface RestoreOptions {
  output: string;
  /** Point in time (ms since epoch); latest when absent. */
  pointInTime?: number;
  force?: boolean;
  ifDbNotExists?: boolean;
  ifReplicaExists?: boolean;
}

/** What `restore` reports; `skipped` says why nothing was done when an --if-* option applied. */
export interface RestoreResult {
  name: string;
  output: string;
  skipped?: "output-exists" | "no-backup";
  generation?: number;
  /** The time of the restored state (ISO 8601). */
  time?: string;
  snapshot?: string;
  segments?: number;
  /** Compacted page sets applied after the snapshot (docs/design.md §11.1). */
  pageSets?: number;
  size?: number;
  /** Duplicate segments that were not on the chain and were passed over (warnings, not damage). */
  orphans?: string[];
  /** When damaged objects made the restore use another snapshot or generation: what was wrong. */
  damaged?: string[];
}

/** Restores database `name` from `store` to `options.output`. */
export async function restoreCommand(
  store: Store,
  name: string,
  options: RestoreOptions,
): Promise<RestoreResult> {
  validateName(name);
  // The prune mark (history below it is gone on purpose) and state.json at once; the listing follows both.
  const [view, stateReading] = await Promise.all([retainedView(store, name), readStateHint(store, name)]);
  store = view;
  const output = resolve(options.output);
  const existing = await inspectOutput(output);
  if (existing.database || existing.sidecars.length) {
    if (options.ifDbNotExists && existing.database) {
      log.info(`${output} already exists; nothing to do (--if-db-not-exists)`);
      return { name, output, skipped: "output-exists" };
    }
    if (!options.force) throw outputExists(output, existing);
  }
  await checkOutputDir(output);

  const backup = await readBackup(store, name, options.pointInTime, stateReading);
  if (!backup) {
    if (options.ifReplicaExists) {
      log.info(`no backup of "${name}" in ${store.url}; nothing to do (--if-replica-exists)`);
      return { name, output, skipped: "no-backup" };
    }
    throw notFoundError(`no backup of "${name}" in ${store.url}`);
  }
  const { history, hint } = backup;
  const choice = chooseRestore(history, options.pointInTime, hint);

  const temp = await localFiles(output, () => createTemp(output, existing.mode));
  const unregister = onInterrupt(temp.remove);
  try {
    let rebuilt: Rebuilt;
    try {
      try {
        rebuilt = await localFiles(output, () => rebuildFirstIntact(store, choice, temp.file, hint));
      } catch (e) {
        // Compaction deletes segments older than the fine history once a page set replaces them; a
        // restore that listed them just before reads the history again, once (docs/design.md §11.1).
        if (!(e instanceof DamageError && e.damage.reason === "missing" && e.damage.kind === "segment")) {
          throw e;
        }
        log.info(`${e.message}; compacted meanwhile? reading the history again`);
        const again = await readBackup(store, name, options.pointInTime);
        if (!again) throw e;
        const retry = chooseRestore(again.history, options.pointInTime, again.hint);
        rebuilt = await localFiles(output, () => rebuildFirstIntact(store, retry, temp.file, again.hint));
      }
    } finally {
      temp.file.close();
    }
    checkIntegrity(temp.path);
    await localFiles(output, () => moveIntoPlace(temp.path, output, options.force ?? false));
    const { plan, size, avoided, segments, pageSets, time, orphans } = rebuilt;
    return {
      name,
      output,
      generation: plan.generation,
      time: new Date(time).toISOString(),
      snapshot: plan.snapshot.key,
      segments,
      pageSets,
      size,
      orphans,
      ...(avoided.length ? { damaged: avoided.map((e) => e.message) } : {}),
    };
  } catch (e) {
    throw asUserError(e, `cannot write ${output}`); // e.g. permission denied, no space left on device
  } finally {
    temp.remove();
    unregister();
  }
}

/**
 * Runs `fn`, turning a failure of the local file system (permission denied, disk full, read-only) into
 * a one-line error naming `path` (exit code 1); walsync's own errors pass through.
 */
async function localFiles<T>(path: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof WalsyncError || !(e instanceof Error)) throw e;
    const osError = e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable ||
      /\(os error \d+\)/.test(e.message);
    if (!osError) throw e;
    throw new WalsyncError(`cannot write ${path}: ${osErrorReason(e) ?? e.message}`, ExitCode.Failure, {
      cause: e,
    });
  }
}

/**
 * Reads state.json (unless `stateRead` already holds it), then lists the database (in that order:
 * state.json is written after the objects it mentions, so it never runs ahead of the listing). A damaged state.json is reported and ignored:
 * it is only a hint. Returns null when there is no backup; throws if only state.json is left.
 */
async function readBackup(
  store: Store,
  name: string,
  target?: number,
  stateRead?: HintReading,
): Promise<{ history: DatabaseHistory; hint: StateHint | null } | null> {
  const reading = stateRead ?? await readStateHint(store, name);
  if (reading.damage) {
    log.warn(
      `${store.url}/${reading.key}: ${reading.damage.message}; ignoring this hint (restore does not need it)`,
    );
  }
  const history = await readRestoreHistory(store, name, target);
  if (history?.generations.length) return { history, hint: reading.hint };
  if (reading.hint) throw new DamageError(missingEverything(name, reading.hint.generation), store.url);
  return null;
}

/** A verified rebuild: the plan it followed, the database size, and the damage it had to avoid. */
interface Rebuilt {
  plan: RestorePlan;
  size: number;
  /** Segments applied after the snapshot. */
  segments: number;
  /** Page sets applied after the snapshot. */
  pageSets: number;
  /** The time of the last object applied. */
  time: number;
  /** Duplicate segments passed over (not on the chain). */
  orphans: string[];
  avoided: DamageError[];
}

/**
 * Rebuilds the database into `file` from the first plan of `choice` whose objects all verify. A plan
 * that reads an object already found damaged is skipped. Says on stderr which damaged object made
 * it use another snapshot or generation. Throws the damage of the preferred plan if none works.
 */
async function rebuildFirstIntact(
  store: Store,
  choice: RestoreChoice,
  file: Deno.FsFile,
  hint: StateHint | null,
): Promise<Rebuilt> {
  const avoided: DamageError[] = choice.damage ? [new DamageError(choice.damage, store.url)] : [];
  const damagedKeys = new Set<string>();
  const plans = [...choice.plans, ...choice.fallbacks];
  for (let i = 0; i < plans.length; i++) {
    const plan = plans[i];
    // A plan is skipped when its snapshot is known damaged; a damaged segment shows again when read.
    if (damagedKeys.has(plan.snapshot.key)) continue;
    if (avoided.length) log.warn(`${avoided.at(-1)!.message}; trying ${describePlan(plan)} instead`);
    log.info(`restoring "${plan.name}" from ${describePlan(plan)}`);
    let reading = plan.snapshot.key;
    try {
      await file.truncate(0);
      // Segments are streamed from the listing, so only the snapshot's size is known ahead.
      const result = await withProgress(
        `restore "${plan.name}"`,
        plan.snapshot.size,
        store,
        (s) => rebuild(s, plan, file, hint, (key) => reading = key, damagedKeys),
      );
      if (avoided.length) {
        log.warn(`restored "${plan.name}" from ${describePlan(plan)} instead, because ${avoided[0].message}`);
      }
      return { plan, ...result, avoided };
    } catch (e) {
      if (!(e instanceof DamageError)) throw e;
      avoided.push(e);
      const pageSet = parsePageSetKey(reading) !== null && !damagedKeys.has(reading);
      damagedKeys.add(reading);
      // A damaged page set: the same plan again without it (the sets or segments below it remain).
      if (pageSet) i--;
    }
  }
  throw withOlderState(avoided[0], choice, store);
}

/** The preferred plan's damage, mentioning an older state that could be restored instead. */
function withOlderState(damage: DamageError | undefined, choice: RestoreChoice, store: Store): DamageError {
  if (!damage) throw new Error("no plan and no damage: nothing was tried");
  if (!choice.older) return damage;
  const when = new Date(choice.older.time).toISOString();
  return new DamageError({
    ...damage.damage,
    message: `${damage.damage.message} (an older state exists: generation ` +
      `${formatGeneration(choice.older.generation)} can restore up to ${when}; use --point-in-time ${when})`,
  }, store.url);
}

/**
 * Replays `plan` into `file`: its snapshot, then its segments streamed from the listing, fetched
 * ahead in parallel and applied in chain order (duplicates resolved), every object verified. Checks
 * the end against state.json's record of the generation, sizes the file and fsyncs it. `onObject`
 * hears the key of each object as it is read.
 */
async function rebuild(
  store: Store,
  plan: RestorePlan,
  file: Deno.FsFile,
  hint: StateHint | null,
  onObject: (key: string) => void,
  damaged: Set<string> = new Set(),
): Promise<{ size: number; segments: number; pageSets: number; time: number; orphans: string[] }> {
  const writer = fileWriter(file);
  // Listed while the snapshot downloads.
  const listingSets = pageSetsOf(store, plan.name, plan.generation);
  listingSets.catch(() => {}); // awaited below, unless the snapshot fails first
  let state: ReplayState = await replaySnapshot(store, plan.snapshot, writer);
  let time = plan.snapshot.time;
  // Compacted page sets first, as far as they go without passing the target (docs/design.md §11.1).
  const sets = (await listingSets).filter((s) => !damaged.has(s.key));
  const path = restorePath(sets, state.nextIndex, plan.upTo);
  for (const set of path) {
    onObject(set.key);
    state = (await replayPageSet(store, set, state, writer)).state;
    time = set.time;
  }
  // Segments a level-1 set replaces may be gone (compacted, older than the fine history).
  const compacted = (index: number) =>
    sets.some((s) => s.level === 1 && s.firstIndex <= index && index <= s.lastIndex);
  const listed = segmentsOf(store, plan.name, plan.generation, time, plan.upTo);
  const fetched = prefetch(store, listed);
  let segments = 0;
  const orphans: string[] = [];
  for await (const { item, orphan } of chainOrder(withMeta(fetched), state)) {
    const meta = item.meta as { index?: number } | null;
    if (!orphan && meta?.index !== undefined && meta.index > state.nextIndex && compacted(state.nextIndex)) {
      // The next segments were compacted away: the state stays at the last commit before them.
      item.release();
      break;
    }
    if (orphan) {
      item.release();
      orphans.push(item.object.key);
      log.warn(
        `${store.url}/${item.object.key}: a duplicate of segment #${orphan.index} that is not on the chain; ` +
          "skipped (an orphan, not damage)",
      );
      continue;
    }
    onObject(item.object.key);
    state = await replaySegment(store, item.object as SegmentObject, state, writer, item.open);
    time = item.object.time;
    segments++;
  }
  const tail = plan.atEnd ? hintedTail(plan.name, plan.generation, state.nextIndex, hint) : null;
  if (tail) throw new DamageError(tail, store.url);
  const size = state.pageCount * state.pageSize;
  await writer.flush?.(); // each object flushes its own writes; this is the safety net
  await file.truncate(size);
  await file.sync();
  return { size, segments, pageSets: path.length, time, orphans };
}

/** Runs `PRAGMA integrity_check` on the rebuilt file, opened immutable so nothing is written to it. */
function checkIntegrity(path: string): void {
  let db: DatabaseSync | undefined;
  let result: string;
  try {
    db = new DatabaseSync(`file:${encodeURI(path)}?immutable=1`, { readOnly: true });
    const rows = db.prepare("PRAGMA integrity_check").all() as { integrity_check: string }[];
    result = rows.map((r) => r.integrity_check).join("; ");
  } catch (e) {
    throw corruptError(
      `the restored database failed to open for its integrity check: ${(e as Error).message}`,
    );
  } finally {
    db?.close();
  }
  if (result !== "ok") {
    throw corruptError(`the restored database failed PRAGMA integrity_check: ${result.slice(0, 500)}`);
  }
}
