/**
 * `walsync restore`: rebuild a database from its backups into a temporary file beside the output,
 * verify it (every object, then `PRAGMA integrity_check`), fsync, and only then move it into place.
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { resolve } from "node:path";
import { type DatabaseCatalog, readCatalog } from "../catalog.ts";
import { corruptError, notFoundError } from "../errors.ts";
import { formatGeneration, validateName } from "../layout.ts";
import * as log from "../log.ts";
import { fileWriter, replaySegment, replaySnapshot } from "../restore/apply.ts";
import { DamageError, missingEverything } from "../restore/damage.ts";
import { chooseRestore, describePlan, type RestoreChoice, type RestorePlan } from "../restore/plan.ts";
import { hintedTail, readStateHint, type StateHint } from "../restore/state_hint.ts";
import { onInterrupt } from "../shutdown.ts";
import { checkOutputDir, createTemp, inspectOutput, moveIntoPlace, outputExists } from "../restore/output.ts";
import type { Store } from "../storage/store.ts";

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
  size?: number;
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

  const backup = await readBackup(store, name);
  if (!backup) {
    if (options.ifReplicaExists) {
      log.info(`no backup of "${name}" in ${store.url}; nothing to do (--if-replica-exists)`);
      return { name, output, skipped: "no-backup" };
    }
    throw notFoundError(`no backup of "${name}" in ${store.url}`);
  }
  const { catalog, hint } = backup;
  const choice = chooseRestore(catalog, options.pointInTime, hint);

  const temp = await createTemp(output, existing.mode);
  const unregister = onInterrupt(temp.remove);
  try {
    let rebuilt: Rebuilt;
    try {
      rebuilt = await rebuildFirstIntact(store, choice, temp.file, hint);
    } finally {
      temp.file.close();
    }
    checkIntegrity(temp.path);
    await moveIntoPlace(temp.path, output, options.force ?? false);
    const { plan, size, avoided } = rebuilt;
    return {
      name,
      output,
      generation: plan.generation,
      time: new Date(plan.time).toISOString(),
      snapshot: plan.snapshot.key,
      segments: plan.segments.length,
      size,
      ...(avoided.length ? { damaged: avoided.map((e) => e.message) } : {}),
    };
  } finally {
    temp.remove();
    unregister();
  }
}

/**
 * Reads state.json, then lists the database (in that order: state.json is written after the objects
 * it mentions, so it never runs ahead of the listing). A damaged state.json is reported and ignored:
 * it is only a hint. Returns null when there is no backup; throws if only state.json is left.
 */
async function readBackup(
  store: Store,
  name: string,
): Promise<{ catalog: DatabaseCatalog; hint: StateHint | null } | null> {
  const reading = await readStateHint(store, name);
  if (reading.damage) {
    log.warn(
      `${store.url}/${reading.key}: ${reading.damage.message}; ignoring this hint (restore does not need it)`,
    );
  }
  const [catalog] = await readCatalog(store, name);
  if (catalog) return { catalog, hint: reading.hint };
  if (reading.hint) throw new DamageError(missingEverything(name, reading.hint.generation), store.url);
  return null;
}

/** A verified rebuild: the plan it followed, the database size, and the damage it had to avoid. */
interface Rebuilt {
  plan: RestorePlan;
  size: number;
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
  for (const plan of [...choice.plans, ...choice.fallbacks]) {
    if ([plan.snapshot, ...plan.segments].some((o) => damagedKeys.has(o.key))) continue;
    if (avoided.length) log.warn(`${avoided.at(-1)!.message}; trying ${describePlan(plan)} instead`);
    log.info(
      `restoring "${plan.name}" ${describePlan(plan)} and ${plan.segments.length} segment(s)`,
    );
    let reading = plan.snapshot.key;
    try {
      await file.truncate(0);
      const size = await rebuild(store, plan, file, hint, (key) => reading = key);
      if (avoided.length) {
        log.warn(`restored "${plan.name}" from ${describePlan(plan)} instead, because ${avoided[0].message}`);
      }
      return { plan, size, avoided };
    } catch (e) {
      if (!(e instanceof DamageError)) throw e;
      avoided.push(e);
      damagedKeys.add(reading);
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
 * Replays `plan` into `file` (every object verified), checks it against state.json's record of the
 * generation's end, sizes the file and fsyncs it. `onObject` hears the key of each object as it
 * is read. Returns the database size.
 */
async function rebuild(
  store: Store,
  plan: RestorePlan,
  file: Deno.FsFile,
  hint: StateHint | null,
  onObject: (key: string) => void,
): Promise<number> {
  const writer = fileWriter(file);
  let state = await replaySnapshot(store, plan.snapshot, writer);
  for (const segment of plan.segments) {
    onObject(segment.key);
    state = await replaySegment(store, segment, state, writer);
  }
  const tail = plan.atEnd ? hintedTail(plan.name, plan.generation, state.nextIndex, hint) : null;
  if (tail) throw new DamageError(tail, store.url);
  const size = state.pageCount * state.pageSize;
  await file.truncate(size);
  await file.sync();
  return size;
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
