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

/** Compacts `names()` every interval until stopped. */
export class BackgroundCompaction {
  readonly #levels: number[] | null;
  readonly #fineMs: number;
  readonly #intervalMs: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #pass: Promise<void> | null = null;
  #stopped = false;
  /** Per database: the page sets earlier passes learned about (see CompactionOptions.cache). */
  readonly #caches = new Map<string, Map<number, PageSetObject[][]>>();
  /** Completed passes, and what the last pass did per database (for tests and logs). */
  passes = 0;
  last: CompactionResult[] = [];

  constructor(readonly store: Store, readonly names: () => string[], options: CompactionSettings = {}) {
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
    for (const name of this.names()) {
      if (this.#stopped) return;
      try {
        let cache = this.#caches.get(name);
        if (!cache) this.#caches.set(name, cache = new Map());
        results.push(
          await compactDatabase(this.store, name, {
            levelsMs: this.#levels!,
            fineHistoryMs: this.#fineMs,
            cache,
          }),
        );
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
