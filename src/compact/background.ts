/**
 * Compaction in the background of `watch` (docs/design.md §11.1): one timer; each pass runs
 * {@link compactDatabase} over the watched databases one at a time, so compaction never competes
 * with the replicas for more than one build or delete at a time. A pass may stop at any moment
 * (shutdown, kill -9): it only ever deletes segments whose replacement is confirmed.
 * @module
 */
import { WalsyncError } from "../errors.ts";
import * as log from "../log.ts";
import type { Store } from "../storage/store.ts";
import { compactDatabase, type CompactionResult } from "./compact.ts";
import { DEFAULT_FINE_HISTORY_MS, DEFAULT_LEVELS_MS } from "./levels.ts";
import type { PageSetObject } from "./key.ts";

/** Compaction settings of `watch`. */
export interface CompactionSettings {
  /** Level durations (ms), finest first; null turns compaction off. Default 30 s, 5 min, 1 h. */
  compactionLevelsMs?: number[] | null;
  /** Segments younger than this are never compacted away (ms). Default 1 h. */
  fineHistoryMs?: number;
  /** Time between two passes (ms). Default: the finest level's duration. */
  compactionIntervalMs?: number;
}

/**
 * What has been uploaded for a database by this process: the replica (a new one after a restart)
 * and how many objects it has uploaded. Equal activity between two passes means nothing new.
 */
export interface Activity {
  source: object;
  uploads: number;
}

/**
 * Compacts the watched databases every interval until stopped. A database with no upload since its last clean
 * pass (per `activity`) is skipped until its next level-1 set ages out of the fine history: an idle
 * database costs no request.
 */
export class BackgroundCompaction {
  readonly #levels: number[] | null;
  readonly #fineMs: number;
  readonly #intervalMs: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #pass: Promise<void> | null = null;
  #stopped = false;
  /** Per database: the page sets earlier passes learned about (see CompactionOptions.cache). */
  readonly #caches = new Map<string, Map<number, PageSetObject[][]>>();
  /** Per database: the activity its last clean pass saw, and when it has work again without uploads. */
  readonly #quiet = new Map<string, { activity: Activity; dueAt: number }>();
  /** Completed passes, and what the last pass did per database (for tests and logs). */
  passes = 0;
  last: CompactionResult[] = [];
  /** Databases passed over because nothing was uploaded and nothing ages out yet. */
  skipped = 0;
  /** Called after a pass that compacted at least one database (watch reclaims memory then). */
  onPassEnd: (() => void) | null = null;

  /**
   * `databases()` lists the watched databases, each with its upload activity (null when unknown:
   * then it is compacted every pass).
   */
  constructor(
    readonly store: Store,
    readonly databases: () => { name: string; activity: Activity | null }[],
    options: CompactionSettings = {},
  ) {
    this.#levels = options.compactionLevelsMs === undefined ? DEFAULT_LEVELS_MS : options.compactionLevelsMs;
    this.#fineMs = options.fineHistoryMs ?? DEFAULT_FINE_HISTORY_MS;
    this.#intervalMs = options.compactionIntervalMs ?? this.#levels?.[0] ?? 0;
  }

  /** Schedules the first pass one interval from now, then one per interval. Off when levels are null. */
  start(): void {
    if (this.#levels === null || this.#stopped) return;
    this.#schedule(this.#intervalMs);
  }

  #schedule(delay: number): void {
    this.#timer = setTimeout(() => {
      this.#pass = this.#run().finally(() => {
        this.#pass = null;
        if (!this.#stopped) this.#schedule(this.#intervalMs);
      });
    }, delay);
  }

  async #run(): Promise<void> {
    const results: CompactionResult[] = [];
    // Activity is read before the pass: an upload during it makes the next pass run.
    const databases = this.databases();
    this.#forgetAllBut(new Set(databases.map((d) => d.name)));
    for (const { name, activity } of databases) {
      if (this.#stopped) return;
      const quiet = this.#quiet.get(name);
      if (activity && quiet && sameActivity(quiet.activity, activity) && Date.now() < quiet.dueAt) {
        this.skipped++;
        continue;
      }
      this.#quiet.delete(name);
      try {
        let cache = this.#caches.get(name);
        if (!cache) this.#caches.set(name, cache = new Map());
        const result = await compactDatabase(this.store, name, {
          levelsMs: this.#levels!,
          fineHistoryMs: this.#fineMs,
          cache,
        });
        results.push(result);
        if (activity) this.#quiet.set(name, { activity, dueAt: result.nextDueAt });
      } catch (e) {
        this.#caches.delete(name);
        if (e instanceof WalsyncError && e.exitCode === 3) continue; // nothing stored yet
        log.warn(
          `${name}: compaction pass failed (retried in ${this.#intervalMs} ms): ${(e as Error).message}`,
        );
      }
    }
    this.last = results;
    this.passes++;
    if (results.length) this.onPassEnd?.();
  }

  /** Drops what is remembered of databases no longer watched (removed from the set while running). */
  #forgetAllBut(watched: Set<string>): void {
    for (const name of this.#quiet.keys()) if (!watched.has(name)) this.#quiet.delete(name);
    for (const name of this.#caches.keys()) if (!watched.has(name)) this.#caches.delete(name);
  }

  /** Stops the timer; waits up to `graceMs` for a pass in progress (it is safe to abandon). */
  async stop(graceMs = 2000): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    if (!this.#pass) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
    await Promise.race([this.#pass.catch(() => {}), grace]);
    clearTimeout(timer);
  }
}

function sameActivity(a: Activity, b: Activity): boolean {
  return a.source === b.source && a.uploads === b.uploads;
}
