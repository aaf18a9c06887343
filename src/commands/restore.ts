/**
 * `walsync restore`: rebuild a database from its backups into a temporary file beside the output,
 * verify it (every object, then `PRAGMA integrity_check`), fsync, and only then move it into place.
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { basename, dirname, resolve } from "node:path";
import { readCatalog } from "../catalog.ts";
import { corruptError, ExitCode, notFoundError, usageError, WalsyncError } from "../errors.ts";
import { validateName } from "../layout.ts";
import * as log from "../log.ts";
import { applySegment, applySnapshot } from "../restore/apply.ts";
import { planRestore } from "../restore/plan.ts";
import { onInterrupt } from "../shutdown.ts";
import { syncDir } from "../storage/file.ts";
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
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Restores database `name` from `store` to `options.output`. */
export async function restoreCommand(
  store: Store,
  name: string,
  options: RestoreOptions,
): Promise<RestoreResult> {
  validateName(name);
  const output = resolve(options.output);
  if (await exists(output)) {
    if (options.ifDbNotExists) {
      log.info(`${output} already exists; nothing to do (--if-db-not-exists)`);
      return { name, output, skipped: "output-exists" };
    }
    if (!options.force) {
      throw new WalsyncError(`${output} already exists; use --force to replace it`, ExitCode.Exists);
    }
    if (!(await Deno.lstat(output)).isFile) throw usageError(`${output} exists and is not a regular file`);
  }
  const dir = dirname(output);
  try {
    if (!(await Deno.stat(dir)).isDirectory) throw usageError(`${dir} is not a directory`);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw notFoundError(`output directory ${dir} does not exist`);
    throw e;
  }

  const [catalog] = await readCatalog(store, name);
  if (!catalog || catalog.generations.every((g) => g.snapshots.length === 0)) {
    if (options.ifReplicaExists) {
      log.info(`no backup of "${name}" in ${store.url}; nothing to do (--if-replica-exists)`);
      return { name, output, skipped: "no-backup" };
    }
    throw notFoundError(`no backup of "${name}" in ${store.url}`);
  }
  const plan = planRestore(catalog, options.pointInTime);
  log.info(
    `restoring "${name}" generation ${plan.generation} from ${plan.snapshot.key} and ${plan.segments.length} segment(s)`,
  );

  const temp = `${dir}/.${basename(output)}.walsync-restore-${crypto.randomUUID().slice(0, 8)}`;
  const removeTemp = () => {
    for (const p of [temp, `${temp}-wal`, `${temp}-shm`, `${temp}-journal`]) {
      try {
        Deno.removeSync(p);
      } catch { /* not there */ }
    }
  };
  const unregister = onInterrupt(removeTemp);
  try {
    const file = await Deno.open(temp, { write: true, read: true, createNew: true, mode: 0o644 });
    let size: number;
    try {
      let state = await applySnapshot(store, plan.snapshot, file);
      for (const segment of plan.segments) state = await applySegment(store, segment, file, state);
      size = state.pageCount * state.pageSize;
      await file.truncate(size);
      await file.sync();
    } finally {
      file.close();
    }
    checkIntegrity(temp);
    if (options.force) {
      await Deno.rename(temp, output);
    } else {
      // link() fails if the output appeared meanwhile: never overwrite without --force.
      try {
        await Deno.link(temp, output);
      } catch (e) {
        if (e instanceof Deno.errors.AlreadyExists) {
          throw new WalsyncError(`${output} already exists; use --force to replace it`, ExitCode.Exists);
        }
        throw e;
      }
      await Deno.remove(temp);
    }
    await syncDir(dir);
    return {
      name,
      output,
      generation: plan.generation,
      time: new Date(plan.time).toISOString(),
      snapshot: plan.snapshot.key,
      segments: plan.segments.length,
      size,
    };
  } finally {
    removeTemp();
    unregister();
  }
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
