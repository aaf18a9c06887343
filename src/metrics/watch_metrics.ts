/**
 * What `watch` exposes on /metrics and /healthz. Values are read at scrape time (pull model) from
 * the replicas' `stats`, the counting store (src/storage/counting_store.ts) and the outcome of each
 * sync round the watch loop reports with {@link WatchMetrics.synced}.
 * @module
 */
import { WalsyncError } from "../errors.ts";
import { activity } from "../storage/counting_store.ts";
import type { Replica } from "../watch/replica.ts";
import { BACKSTOP_INTERVALS } from "../watch/scheduler_loop.ts";
import { type Registry, registry as defaultRegistry } from "./registry.ts";

/**
 * An idle database covered by file-system events is looked at once per backstop period (5 to 6 sync
 * intervals, later when the event loop is busy); health allows that plus 4 intervals.
 */
export const HEALTH_INTERVALS = BACKSTOP_INTERVALS + 5;

/**
 * The longest pause a replica makes between two attempts after a failure (MAX_SYNC_BACKOFF_MS in
 * src/watch/scheduler_loop.ts, plus a margin): a round that ends without error this long after a failed
 * one really ran, even if it made no request.
 */
const BACKOFF_LIMIT_MS = 11_000;

/** How a database's rounds are going. */
interface RoundState {
  /** End of the last round that left nothing unshipped (or the start of watching). */
  lastOkAt: number;
  /** End of the last failed round, 0 if the last round succeeded. */
  failedAt: number;
  lastError: string;
}

/** The health verdict: ok, or the databases that are behind and why. */
export interface Health {
  ok: boolean;
  behind: string[];
}

/** Metrics of one `watch` process. */
export class WatchMetrics {
  readonly #rounds = new Map<string, RoundState>();
  /** The replicas being watched now (they come and go: restarts, globs). */
  #replicas: () => Replica[] = () => [];
  readonly #startedAt = Date.now();

  constructor(readonly syncIntervalMs: number, readonly registry: Registry = defaultRegistry) {
    const r = registry;
    this.failures = r.counter("walsync_sync_failures_total", "Failed sync rounds by kind.");
    const lag = r.gauge(
      "walsync_replication_lag_seconds",
      "Seconds since the database last had nothing unshipped.",
    );
    const lastSync = r.gauge(
      "walsync_last_sync_timestamp_seconds",
      "Time of the last successful sync round.",
    );
    const bytes = r.counter("walsync_shipped_bytes_total", "Bytes uploaded (segments and snapshots).");
    const objects = r.counter("walsync_shipped_objects_total", "Objects uploaded (segments and snapshots).");
    const segments = r.counter("walsync_segments_total", "WAL segments shipped.");
    const snapshots = r.counter("walsync_snapshots_total", "Snapshots taken.");
    const failedUploads = r.counter("walsync_failed_uploads_total", "Uploads that failed (after retries).");
    const checkpoints = r.counter("walsync_checkpoints_total", "Checkpoints run by walsync.");
    const generations = r.counter("walsync_generations_started_total", "New generations started.");
    const generation = r.gauge("walsync_generation", "Current generation.");
    const walSize = r.gauge("walsync_wal_size_bytes", "Size of the database's -wal file.");
    const snapshotAge = r.gauge("walsync_snapshot_age_seconds", "Seconds since the last snapshot upload.");
    const up = r.gauge("walsync_database_up", "1 while the database is replicated, 0 when it failed.");
    const rss = r.gauge("walsync_resident_memory_bytes", "Resident set size of the process.");
    const watched = r.gauge("walsync_databases_watched", "Databases being replicated.");
    const perDatabase = [
      lag,
      lastSync,
      bytes,
      objects,
      segments,
      snapshots,
      failedUploads,
      checkpoints,
      generations,
      generation,
      walSize,
      snapshotAge,
      up,
      this.failures,
    ];
    let exposed = new Set<string>();
    r.onCollect(() => {
      const now = Date.now();
      // A database no longer watched (its file matched a glob and is gone) loses its series.
      const current = new Set(this.#replicas().map((x) => x.name));
      for (const name of exposed) {
        if (!current.has(name)) { for (const m of perDatabase) m.remove({ database: name }); }
      }
      exposed = current;
      rss.set({}, Deno.memoryUsage().rss);
      watched.set({}, this.#replicas().filter((x) => !x.failure).length);
      for (const replica of this.#replicas()) {
        const database = replica.name;
        const l = { database };
        const round = this.#round(database);
        lag.set(l, round.failedAt ? (now - round.lastOkAt) / 1000 : 0);
        lastSync.set(l, round.lastOkAt / 1000);
        const seen = activity.get(database);
        bytes.set(l, seen?.shippedBytes ?? 0);
        objects.set(l, seen?.shippedObjects ?? 0);
        if (seen?.lastSnapshotAt) snapshotAge.set(l, (now - seen.lastSnapshotAt) / 1000);
        segments.set(l, replica.stats.segments);
        snapshots.set(l, replica.stats.snapshots);
        failedUploads.set(l, replica.stats.failedUploads);
        checkpoints.set(l, replica.stats.checkpoints);
        generations.set(l, replica.stats.generationsStarted);
        generation.set(l, replica.generation);
        up.set(l, replica.failure ? 0 : 1);
        try {
          walSize.set(l, Deno.statSync(`${replica.path}-wal`).size);
        } catch {
          walSize.set(l, 0);
        }
      }
    });
  }

  /** Failed rounds by database and kind. */
  readonly failures;

  #round(name: string): RoundState {
    let round = this.#rounds.get(name);
    if (!round) this.#rounds.set(name, round = { lastOkAt: Date.now(), failedAt: 0, lastError: "" });
    return round;
  }

  /**
   * The replicas to report: an array read at each scrape, or a function giving the current ones
   * (replicas come and go as databases restart or globs match), so later additions show up.
   */
  watch(replicas: Replica[] | (() => Replica[])): void {
    this.#replicas = typeof replicas === "function" ? replicas : () => replicas;
    for (const replica of this.#replicas()) this.#round(replica.name);
  }

  /**
   * Reports the end of a sync round of `replica`: `error` when it failed. A replica in backoff
   * after a failure returns without trying; such a round only counts as a success once the store
   * answered a request for this database since the failure, or the backoff is surely over.
   */
  synced(replica: Replica, error?: unknown, now = Date.now()): void {
    const round = this.#round(replica.name);
    if (error !== undefined) {
      round.failedAt = now;
      round.lastError = (error as Error).message ?? String(error);
      this.failures.inc({ database: replica.name, kind: failureKind(error) });
      return;
    }
    if (round.failedAt) {
      const seen = activity.get(replica.name);
      const storeAnswered = seen !== undefined && seen.lastOkAt > round.failedAt &&
        seen.lastOkAt > seen.lastFailedAt;
      if (!storeAnswered && now - round.failedAt < BACKOFF_LIMIT_MS) return;
    }
    round.failedAt = 0;
    round.lastOkAt = now;
  }

  /**
   * Healthy while every database was looked at successfully (a sync round, or a backstop check that
   * found nothing to do) within {@link HEALTH_INTERVALS} sync intervals, and none failed for good.
   */
  health(now = Date.now()): Health {
    const behind: string[] = [];
    for (const replica of this.#replicas()) {
      if (replica.failure) {
        behind.push(`${replica.name} (failed: ${replica.failure})`);
        continue;
      }
      const round = this.#round(replica.name);
      const since = now - Math.max(round.lastOkAt, this.#startedAt);
      if (since > HEALTH_INTERVALS * this.syncIntervalMs) {
        const why = round.failedAt ? `: ${round.lastError}` : "";
        behind.push(`${replica.name} (${(since / 1000).toFixed(1)} s since its last sync${why})`);
      }
    }
    return { ok: behind.length === 0, behind };
  }

  /** Forgets a database that is no longer watched. */
  forget(name: string): void {
    this.#rounds.delete(name);
  }
}

/** A short, stable label for a failure: transient, storage, corrupt, locked, ... */
function failureKind(error: unknown): string {
  if (!(error instanceof WalsyncError)) return "internal";
  if (error.retryable) return "transient";
  return { 1: "failure", 2: "usage", 3: "not_found", 4: "corrupt", 5: "storage", 6: "exists", 7: "locked" }[
    error.exitCode as number
  ] ?? "failure";
}
