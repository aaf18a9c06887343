/**
 * The life of one watched database inside `watch` (docs/design.md §3.5): its own schedule, independent
 * of every other database. It starts (open, take the lease, continue or begin a generation),
 * retrying with backoff while it cannot; syncs when a file-system event says the WAL changed (at
 * most once per sync interval) or when the backstop poll comes round; renews its lease on its own
 * timer and stops uploading when it could not; and at shutdown ships what is committed and gives
 * the lease back.
 * @module
 */
import { ExitCode, WalsyncError } from "../errors.ts";
import * as log from "../log.ts";
import type { Store } from "../storage/store.ts";
import { FencedStore, Lease } from "./lease.ts";
import { LeaseRenewal } from "./lease_renewal.ts";
import { ProblemLog } from "./problem_log.ts";
import { Replica, type ReplicaOptions } from "./replica.ts";
import type { SyncPool } from "./scheduler_pool.ts";
import type { WatchTarget } from "./targets.ts";

/** The tunables a database loop needs. */
export interface LoopOptions extends ReplicaOptions {
  syncIntervalMs: number;
  leaseMs: number;
  /** How often a reason for not replicating is logged again while it lasts. */
  reportIntervalMs: number;
}

/** What every loop of one `watch` shares. */
export interface LoopContext {
  store: Store;
  options: LoopOptions;
  pool: SyncPool;
  /** Aborted at shutdown (or when the store turned out to be unusable). */
  signal: AbortSignal;
  /** Whether file-system events come for this database's WAL (if not, it is polled every interval). */
  eventsCover(path: string): boolean;
  /** Called when the store cannot be used at all (access denied, no bucket): everything stops. */
  onFatal(error: WalsyncError): void;
  /** Called after each sync of a database (`error` when it failed): metrics and health. */
  onSynced?(replica: Replica, error?: unknown): void;
  /**
   * Subscribes to "the store answers again after an outage" (returns the unsubscribe function): a
   * database waiting out a backoff then tries again at once, so the backlog ships soon after.
   */
  onStoreReachable?(listener: () => void): () => void;
}

/** When to try a failed start again: after `ms`, or sooner on an event or when the store is back. */
interface StartRetry {
  ms: number;
  onHint: boolean;
  onRecovery?: boolean;
}

/** How the first start attempt went (for the start-up summary and the "nothing to watch" exit). */
export type FirstAttempt = "started" | "retrying" | { failed: WalsyncError };

/**
 * With events, the poll that catches what they missed looks at each database every this many sync
 * intervals (a cheap synchronous check from the scheduler's one timer, {@link DatabaseLoop.backstop}).
 */
export const BACKSTOP_INTERVALS = 5;
/** With events, an idle database still runs a full sync round at least this often. */
const IDLE_SYNC_MS = 60_000;
/** The longest pause between two attempts of a failing database. */
const MAX_BACKOFF_MS = 60_000;
/** Between two sync failures, at most this long (the backlog ships soon after an outage). */
const MAX_SYNC_BACKOFF_MS = 10_000;

/** One watched database. */
export class DatabaseLoop {
  #replica: Replica | null = null;
  #lease: Lease | null = null;
  /** Why the database is not being replicated right now, logged without flooding. */
  readonly #problems: ProblemLog;
  #wake: (() => void) | null = null;
  /** The renewal of the lease held now. */
  #renewal: LeaseRenewal | null = null;
  /** An event said the WAL may have changed since the last sync began. */
  #hinted = false;
  #lastSyncAt = 0;
  /** When the database was last looked at: a sync round or a backstop check. */
  #checkedAt = 0;
  /** A sync round is running (the backstop leaves the database alone). */
  #syncing = false;
  #rescannedAt = -Infinity;
  #backoffMs = 0;
  /** A fixed offset of this database's backstop poll, so that idle databases do not poll in step. */
  readonly #phase = Math.random();
  #firstAttempt: (outcome: FirstAttempt) => void = () => {};
  /** Resolves once the first start attempt is over. */
  readonly firstAttempt: Promise<FirstAttempt>;
  /** What {@link totals} has counted of each replica so far. */
  readonly #counted = new WeakMap<Replica, { segments: number; generationsStarted: number }>();
  /** Totals over every replica this loop ran (restarts included). */
  readonly totals = { segments: 0, generationsStarted: 0 };
  /** Set at the end when the database ended in failure (not replicating, or its last commits not shipped). */
  failure: string | null = null;

  constructor(readonly target: WatchTarget, readonly ctx: LoopContext) {
    this.firstAttempt = new Promise((resolve) => (this.#firstAttempt = resolve));
    this.#problems = new ProblemLog(target.name, ctx.options.reportIntervalMs);
  }

  get name(): string {
    return this.target.name;
  }

  /** The replica running now (null while the database is not being replicated). */
  get replica(): Replica | null {
    return this.#replica;
  }

  /** A hint that the database (or its WAL) changed: look at it soon (within one sync interval). */
  hint(): void {
    this.#hinted = true;
    this.#wake?.();
  }

  /** Runs until the context's signal is aborted, then ships what is committed and releases the lease. */
  async run(): Promise<void> {
    const { signal } = this.ctx;
    try {
      while (!signal.aborted) {
        if (!this.#replica) {
          const attemptedAt = performance.now();
          const retry = await this.#start();
          if (retry) await this.#waitToRetry(attemptedAt, retry);
          continue;
        }
        const lease = this.#lease!;
        if (lease.lost) {
          this.#dropReplica(lease.lost);
          continue;
        }
        if (!lease.canWrite()) {
          // The renewal timer keeps trying and wakes us up; the read transaction keeps the WAL pinned.
          this.#problems.report(
            "the lease could not be renewed in time: not uploading until it is (the WAL stays pinned)",
          );
          await this.#sleep(1000);
          continue;
        }
        const due = this.#nextSyncAt();
        if (due > performance.now()) {
          await this.#sleep(due - performance.now());
          continue;
        }
        await this.#sync(this.#replica);
      }
    } catch (e) {
      if (e instanceof WalsyncError && e.exitCode === ExitCode.Storage && !e.retryable) this.ctx.onFatal(e);
      else {
        this.failure = `internal error: ${(e as Error).message}`;
        log.error(`${this.name}: internal error, stopped replicating it: ${(e as Error).stack ?? e}`);
      }
    } finally {
      this.#firstAttempt("retrying");
      await this.#finish();
    }
  }

  /**
   * When the next sync round is due: one interval after the last if hinted or not covered by events;
   * else the backstop checks wake it ({@link backstop}), and a full round runs once a minute anyway.
   */
  #nextSyncAt(): number {
    const interval = this.ctx.options.syncIntervalMs;
    if (this.#hinted) return this.#lastSyncAt + interval;
    if (!this.ctx.eventsCover(this.target.path)) return this.#lastSyncAt + interval;
    return this.#lastSyncAt + Math.max(IDLE_SYNC_MS, BACKSTOP_INTERVALS * interval);
  }

  /**
   * The backstop poll of a database that events cover (called by the scheduler's one timer every
   * sync interval): once per backstop period, asks the replica whether a sync would do anything and
   * wakes the loop if so. Idle databases thus cost a stat and two small reads per period, not a
   * sync round (measured at 100 idle databases: ~0.5 ms of CPU per round).
   */
  backstop(now = performance.now()): void {
    const replica = this.#replica;
    if (!replica || this.#hinted || this.#syncing) return;
    const interval = this.ctx.options.syncIntervalMs;
    if (now < this.#checkedAt + (BACKSTOP_INTERVALS + this.#phase) * interval) return;
    if (!this.ctx.eventsCover(this.target.path)) return; // a stat: only for the databases due
    this.#checkedAt = now;
    let needed: boolean;
    try {
      needed = replica.needsSync();
    } catch {
      needed = true; // the sync round reports what went wrong
    }
    if (needed) this.hint();
    else this.ctx.onSynced?.(replica);
  }

  async #sync(replica: Replica): Promise<void> {
    // After an event, or every backstop period anyway, the WAL is read even if it looks unchanged.
    const now = performance.now();
    const rescan = this.#hinted ||
      now - this.#rescannedAt >= BACKSTOP_INTERVALS * this.ctx.options.syncIntervalMs;
    if (rescan) this.#rescannedAt = now;
    this.#hinted = false;
    this.#lastSyncAt = this.#checkedAt = now;
    const before = replica.stats.segments + replica.stats.snapshots + replica.stats.checkpoints;
    this.#syncing = true;
    try {
      await this.ctx.pool.run(() => replica.sync(rescan));
      this.ctx.onSynced?.(replica);
      this.#backoffMs = 0;
      // Something moved (or a new generation is due): look again after one interval, not the
      // backstop, so that a burst's tail and a gap's new generation follow promptly.
      const after = replica.stats.segments + replica.stats.snapshots + replica.stats.checkpoints;
      if (after !== before || replica.gapPending) this.#hinted = true;
      if (replica.failure) {
        this.#dropReplica(replica.failure);
      } else if (replica.unavailable) {
        this.#problems.report(`${replica.unavailable}; watching for a database to appear there again`);
      } else this.#problems.recovered();
    } catch (e) {
      this.ctx.onSynced?.(replica, e);
      if (this.ctx.signal.aborted) return;
      if (isFatal(e)) throw e;
      if (this.#lease && !this.#lease.canWrite()) return; // reported by the fence branch
      this.#backoffMs = Math.min(Math.max(this.#backoffMs * 2, 1000), MAX_SYNC_BACKOFF_MS);
      // One key for every sync failure: logged when it starts and then once per report interval.
      this.#problems.report(`sync failed, will retry: ${(e as Error).message}`, "warn", "sync failed");
      await this.#sleep(this.#backoffMs / 2 + (Math.random() * this.#backoffMs) / 2, false, true);
    } finally {
      this.#syncing = false;
      this.#addTotals(replica);
    }
  }

  /**
   * Waits before the next start attempt: `retry.ms`, or less if `retry.onHint` and an event about the
   * database arrives (a missing database appears, a database switches to WAL), but never less than
   * one sync interval after the last attempt.
   */
  async #waitToRetry(attemptedAt: number, retry: StartRetry): Promise<void> {
    const { signal, options } = this.ctx;
    const until = attemptedAt + retry.ms;
    while (!signal.aborted && performance.now() < until) {
      await this.#sleep(until - performance.now(), retry.onHint, retry.onRecovery);
      if (this.#hinted) break;
    }
    const earliest = attemptedAt + options.syncIntervalMs;
    while (!signal.aborted && performance.now() < earliest) {
      await this.#sleep(earliest - performance.now(), false);
    }
    this.#hinted = false;
  }

  /**
   * One start attempt: open the database, take its lease, continue or begin a generation. Returns
   * null when started, else when to try again (a database that is missing or not in WAL mode is
   * looked at again on every backstop poll and on any event about it).
   */
  async #start(): Promise<StartRetry | null> {
    const { store, options, signal } = this.ctx;
    let lease: Lease | null = null;
    // Per-database settings of the config file (snapshot interval, checkpoint frames) win.
    const replica = new Replica(this.target.path, this.name, new FencedStore(store, () => lease), {
      ...options,
      ...this.target.overrides,
    });
    let stage: "open" | "lease" | "start" = "open";
    try {
      await this.ctx.pool.run(async () => {
        await replica.open();
        stage = "lease";
        lease = await Lease.acquire(store, this.name, options.leaseMs);
        this.#lease = lease;
        this.#renewal = new LeaseRenewal(lease, {
          name: this.name,
          signal: this.ctx.signal,
          wake: () => this.#wake?.(),
          onStoreReachable: this.ctx.onStoreReachable,
        });
        stage = "start";
        await replica.start();
      });
    } catch (e) {
      replica.close();
      if (lease) await this.#releaseLease();
      this.#addTotals(replica);
      if (signal.aborted) return null;
      if (isFatal(e)) throw e;
      const error = e instanceof WalsyncError ? e : new WalsyncError((e as Error).message);
      const permanent = stage === "open" || error.exitCode === ExitCode.Locked;
      this.#firstAttempt(permanent ? { failed: error } : "retrying");
      if (stage === "open") {
        this.#problems.report(`${error.message}; will start when that changes`, "error", error.message);
        this.#hinted = false;
        return { ms: BACKSTOP_INTERVALS * options.syncIntervalMs, onHint: true };
      }
      if (error.exitCode === ExitCode.Locked) {
        this.#problems.report(error.message, "error");
        return { ms: Math.min(options.leaseMs / 3, MAX_BACKOFF_MS), onHint: false };
      }
      this.#backoffMs = Math.min(Math.max(this.#backoffMs * 2, 1000), MAX_BACKOFF_MS);
      const wait = this.#backoffMs / 2 + (Math.random() * this.#backoffMs) / 2;
      this.#problems.report(`could not start (retrying with backoff): ${error.message}`, "warn");
      return { ms: wait, onHint: false, onRecovery: true };
    }
    this.#replica = replica;
    this.#backoffMs = 0;
    // An event that came during the start (a commit after its last read) still counts.
    this.#lastSyncAt = performance.now();
    this.#problems.recovered();
    this.#firstAttempt("started");
    return null;
  }

  /** Stops replicating (the lease is gone, or the replica gave up) and lets the start loop retry. */
  #dropReplica(reason: string): void {
    const replica = this.#replica;
    this.#replica = null;
    replica?.close();
    const lease = this.#lease;
    this.#lease = null;
    this.#renewal?.stop();
    this.#renewal = null;
    if (lease && !lease.lost) lease.release().catch(() => {});
    this.#problems.report(`stopped replicating: ${reason}; will try to take it up again`, "error");
  }

  /** At shutdown: ships what is committed (if the lease still allows it) and releases the lease. */
  async #finish(): Promise<void> {
    const replica = this.#replica;
    const lease = this.#lease;
    this.#replica = null;
    if (!replica) this.#problems.current ??= "not started (interrupted while starting)";
    if (replica) {
      if (lease?.canWrite() && !replica.failure) {
        try {
          // A gap found by the last sync: start the new generation now, so that what is
          // committed is shipped (stop() alone would ship nothing past a gap).
          if (replica.gapPending) await this.ctx.pool.run(() => replica.sync(true));
          await this.ctx.pool.run(() => replica.stop());
        } catch (e) {
          this.failure = `could not ship the last commits before exiting: ${(e as Error).message}`;
          log.error(`${this.name}: ${this.failure}`);
        }
      } else replica.close();
      this.#addTotals(replica);
    }
    if (lease) await this.#releaseLease();
    this.failure ??= this.#problems.current;
  }

  async #releaseLease(): Promise<void> {
    const lease = this.#lease;
    this.#lease = null;
    this.#renewal?.stop();
    this.#renewal = null;
    if (!lease || lease.lost) return;
    try {
      if (!(await lease.release())) log.warn(`${this.name}: the lease was no longer ours; left it as it is`);
    } catch (e) {
      log.warn(`${this.name}: could not release the lease (it expires by itself): ${(e as Error).message}`);
    }
  }

  #addTotals(replica: Replica): void {
    // Adds what the replica did since it was last counted; its own counters are left alone (metrics
    // read them).
    const counted = this.#counted.get(replica) ?? { segments: 0, generationsStarted: 0 };
    this.totals.segments += replica.stats.segments - counted.segments;
    this.totals.generationsStarted += replica.stats.generationsStarted - counted.generationsStarted;
    this.#counted.set(replica, {
      segments: replica.stats.segments,
      generationsStarted: replica.stats.generationsStarted,
    });
  }

  /**
   * Sleeps `ms`, waking early at shutdown, on a hint unless `onHint` is false, and when the store
   * answers again after an outage if `onRecovery`.
   */
  #sleep(ms: number, onHint = true, onRecovery = false): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        unsubscribe?.();
        this.ctx.signal.removeEventListener("abort", done);
        if (this.#wake === done) this.#wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      const unsubscribe = onRecovery ? this.ctx.onStoreReachable?.(done) : undefined;
      this.ctx.signal.addEventListener("abort", done, { once: true });
      if (onHint) this.#wake = done;
    });
  }
}

/** A store that cannot be used at all: every database would fail the same way. */
function isFatal(e: unknown): boolean {
  return e instanceof WalsyncError && e.exitCode === ExitCode.Storage && !e.retryable;
}
