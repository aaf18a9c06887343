/**
 * `walsync prune`: applies retention once to the named databases (all when none are named), for
 * stores without a running watcher or as a scripted clean-up. See src/lifecycle/ and docs/design.md
 * §11.
 * @module
 */
import { notFoundError } from "../errors.ts";
import { validateName } from "../layout.ts";
import { enforceRetention, type RetentionResult } from "../lifecycle/enforce.ts";
import { readAllHistories } from "../log/history.ts";
import type { Store } from "../storage/store.ts";

/** Options of `prune`. */
export interface PruneOptions {
  /** The retention window (ms), or null to keep all history (only leftovers are removed). */
  retentionMs: number | null;
  dryRun?: boolean;
  /** Called with each key deleted (or that would be) and its size, oldest first. */
  onKey?: (key: string, size: number) => void;
  /** "Now", for tests (ms since the epoch). */
  now?: number;
}

/** The database names in `store` (one streamed listing). */
async function allNames(store: Store): Promise<string[]> {
  const names: string[] = [];
  for await (const db of readAllHistories(store, () => {})) {
    if (db.generations.length) names.push(db.name);
  }
  return names;
}

/** Prunes each database in turn; returns what was (or would be) deleted from each. */
export async function pruneCommand(
  store: Store,
  names: string[],
  options: PruneOptions,
): Promise<RetentionResult[]> {
  names.forEach(validateName);
  const targets = names.length ? names : await allNames(store);
  if (targets.length === 0) throw notFoundError(`no backups in ${store.url}`);
  const horizon = options.retentionMs === null ? 0 : (options.now ?? Date.now()) - options.retentionMs;
  const results: RetentionResult[] = [];
  for (const name of targets) {
    results.push(
      await enforceRetention(store, name, horizon, {
        dryRun: options.dryRun,
        onObject: (o) => options.onKey?.(o.key, o.size),
      }),
    );
  }
  return results;
}

/** One line per database, for humans. */
export function formatPruneResults(results: RetentionResult[]): string {
  return results.map((r) =>
    `${r.name}: ${
      r.dryRun ? "would delete" : "deleted"
    } ${r.deletedObjects} object(s), ${r.deletedBytes} bytes; ` +
    `restorable from ${r.restorableFrom ?? "-"}`
  ).join("\n") + "\n";
}
