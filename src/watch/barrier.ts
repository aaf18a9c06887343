/**
 * The write-lock barrier (docs/design.md §3.3): the application's write lock, taken with BEGIN
 * IMMEDIATE on a connection of walsync's own and held only for synchronous local work; and the
 * connection checkpoints run on.
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import * as log from "../log.ts";
import { acquireWriteLock, endTransaction, openWriter } from "../sqlite/database.ts";

/** How long to wait for the lock, and who hears how long it was held. */
export interface BarrierOptions {
  /** How long to wait for the write lock (ms) before giving up. */
  waitMs: number;
  /** Aborted at shutdown: the wait stops at once. */
  signal?: AbortSignal;
  /** Hears how long the lock was held (ms). */
  onReleased(heldMs: number): void;
}

/**
 * Runs `work` while holding the write lock of the database at `path`. `work` is synchronous on
 * purpose: only local work may run under the application's lock, never network I/O. Returns null
 * without running it if the lock stayed busy for `waitMs`.
 */
export async function underWriteLock<T>(
  path: string,
  work: () => T,
  opts: BarrierOptions,
): Promise<T | null> {
  const writer = openWriter(path);
  try {
    // Cooperative: short tries with pauses on a timer, so other databases and signals go on.
    if (!(await acquireWriteLock(writer, opts.waitMs, { signal: opts.signal }))) return null;
    const lockedAt = performance.now();
    try {
      return work();
    } finally {
      endTransaction(writer);
      opts.onReleased(performance.now() - lockedAt);
    }
  } finally {
    writer.close();
  }
}

/** A writable connection for checkpoints (never in a transaction, never waiting for a lock). */
export function openCheckpointer(path: string): DatabaseSync {
  const db = openWriter(path);
  db.exec("PRAGMA busy_timeout = 0");
  return db;
}

/** A PASSIVE checkpoint on `db` (not in a transaction); logs how far it got. */
export function checkpointPassive(db: DatabaseSync, name: string): void {
  const result = db.prepare("PRAGMA wal_checkpoint(PASSIVE)").get() as Record<string, number>;
  log.debug(
    `${name}: checkpoint: ${result.checkpointed} of ${result.log} frames backfilled (busy ${result.busy})`,
  );
}
