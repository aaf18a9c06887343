/**
 * The `watch` scheduler (docs/design.md §3.5): one {@link DatabaseLoop} per database, all started at
 * once and running independently; a shared {@link SyncPool} bounds how many sync at the same time;
 * one file-system watcher over the databases' WAL files turns WAL changes into prompt syncs.
 * A slow, locked or failing database never delays another.
 * @module
 */
import { WalsyncError } from "../errors.ts";
import * as log from "../log.ts";
import type { RetryingStore } from "../storage/retry.ts";
import type { Store } from "../storage/store.ts";
import { WalEvents } from "./events.ts";
import { DatabaseLoop, type FirstAttempt, type LoopContext, type LoopOptions } from "./scheduler_loop.ts";
import type { Replica } from "./replica.ts";
import { SyncPool } from "./scheduler_pool.ts";
import type { WatchTarget } from "./targets.ts";

/** Options of the scheduler. */
export interface SchedulerOptions extends LoopOptions {
  /** How many databases sync (or start) at the same time. */
  concurrency: number;
  /** Use file-system events on the WAL files as hints (else every WAL is polled every interval). */
  fsEvents: boolean;
}

/** How the scheduler's run ended. */
export interface SchedulerResult {
  /** Databases that ended in failure, with the reason. */
  failed: { name: string; reason: string }[];
  /** Databases still busy when the shutdown grace ran out. */
  unfinished: string[];
  segments: number;
  generationsStarted: number;
}

/** Runs the databases of one `watch`. */
export class WatchScheduler {
  readonly loops: DatabaseLoop[];
  readonly #controller = new AbortController();
  #fatal: WalsyncError | null = null;
  #events: WalEvents | null = null;
  #running: Promise<void>[] = [];
  readonly #ctx: LoopContext;
  /** Each database's own stop switch (a glob's file vanished), besides the scheduler's. */
  readonly #own = new Map<DatabaseLoop, AbortController>();
  /** The one timer of every database's backstop poll. */
  #backstop: ReturnType<typeof setInterval> | undefined;

  constructor(
    store: Store,
    targets: WatchTarget[],
    readonly options: SchedulerOptions,
    onSynced?: LoopContext["onSynced"],
  ) {
    const pool = new SyncPool(options.concurrency);
    this.#ctx = {
      store,
      options: { ...options, signal: this.#controller.signal },
      pool,
      signal: this.#controller.signal,
      eventsCover: (path: string) => this.#events?.covers(path) ?? false,
      onFatal: (e: WalsyncError) => {
        this.#fatal ??= e;
        this.stop();
      },
      onSynced,
      onStoreReachable: storeRecoveryOf(store),
    };
    this.loops = targets.map((t) => this.#newLoop(t));
  }

  /** A database's loop, with a signal that stops it alone or with everything. */
  #newLoop(target: WatchTarget): DatabaseLoop {
    const own = new AbortController();
    const signal = AbortSignal.any([this.#controller.signal, own.signal]);
    const loop = new DatabaseLoop(target, {
      ...this.#ctx,
      signal,
      options: { ...this.#ctx.options, signal },
    });
    this.#own.set(loop, own);
    return loop;
  }

  /** The replicas running now (for metrics, read at each scrape). */
  replicas(): Replica[] {
    return this.loops.flatMap((l) => (l.replica ? [l.replica] : []));
  }

  /** Adds a database while running (a new match of a config glob); it starts at once. */
  add(target: WatchTarget): void {
    if (this.#controller.signal.aborted || this.loops.some((l) => l.target.path === target.path)) return;
    const loop = this.#newLoop(target);
    this.loops.push(loop);
    this.#running.push(loop.run());
  }

  /** Stops one database (a glob's file is gone): ships what is committed, releases its lease. */
  async remove(path: string): Promise<void> {
    const index = this.loops.findIndex((l) => l.target.path === path);
    if (index < 0) return;
    const [loop] = this.loops.splice(index, 1);
    const [running] = this.#running.splice(index, 1);
    this.#own.get(loop)!.abort(new WalsyncError(`${loop.name}: its file is gone`));
    this.#own.delete(loop);
    await running;
  }

  /** The error that stopped everything (the store cannot be used), if any. */
  get fatal(): WalsyncError | null {
    return this.#fatal;
  }

  /** Starts every database at once, and the file-system events. */
  start(): void {
    const byPath = new Map(this.loops.map((l) => [l.target.path, l]));
    this.#running = this.loops.map((l) => l.run());
    // After the first start attempts: opening a database creates its -wal file if there was none.
    this.firstAttempts().then(() => {
      if (this.#controller.signal.aborted || !this.options.fsEvents) return;
      this.#events = WalEvents.start([...byPath.keys()], (path) => byPath.get(path)?.hint());
      this.#backstop = setInterval(() => {
        const now = performance.now();
        for (const loop of this.loops) loop.backstop(now);
      }, this.options.syncIntervalMs);
    });
  }

  /** Resolves when every database's first start attempt is over (started, failed, or retrying). */
  firstAttempts(): Promise<FirstAttempt[]> {
    return Promise.all(this.loops.map((l) => l.firstAttempt));
  }

  /** Resolves when the scheduler was stopped (a signal, or a fatal store error). */
  stopped(): Promise<void> {
    const signal = this.#controller.signal;
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
  }

  /** Asks every database to finish: waits end at once, what is committed is shipped, leases released. */
  stop(): void {
    clearInterval(this.#backstop);
    this.#controller.abort(new WalsyncError("watch is stopping"));
  }

  /** Stops (if not yet) and waits up to `graceMs` for every database to finish. */
  async finish(graceMs: number): Promise<SchedulerResult> {
    this.stop();
    const done = new Set<DatabaseLoop>();
    const all = Promise.all(this.loops.map((l, i) => this.#running[i]?.then(() => void done.add(l))));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const graceOver = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
    await Promise.race([all, graceOver]);
    clearTimeout(timer);
    this.#events?.close();
    const unfinished = this.loops.filter((l) => !done.has(l)).map((l) => l.name);
    for (const name of unfinished) {
      log.error(
        `${name}: still busy after the shutdown grace (${graceMs / 1000} s); exiting anyway ` +
          "(what was not shipped stays in the WAL and is shipped at the next start)",
      );
    }
    return {
      failed: this.loops.filter((l) => l.failure !== null).map((l) => ({ name: l.name, reason: l.failure! })),
      unfinished,
      segments: this.loops.reduce((n, l) => n + l.totals.segments, 0),
      generationsStarted: this.loops.reduce((n, l) => n + l.totals.generationsStarted, 0),
    };
  }
}

/** The store's "answers again after an outage" subscription, when it has one (a RetryingStore). */
function storeRecoveryOf(store: Store): LoopContext["onStoreReachable"] {
  const retrying = store as Partial<Pick<RetryingStore, "onReachable">>;
  return typeof retrying.onReachable === "function"
    ? (listener) => retrying.onReachable!(listener)
    : undefined;
}
