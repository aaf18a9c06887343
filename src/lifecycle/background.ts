/**
 * Retention in the background of `watch`: one timer; each pass applies {@link enforceRetention} to
 * the watched databases one at a time (one LIST pass of each per check interval), so retention never
 * competes with the replicas for more than one listing and a few deletes at a time. The rules never
 * touch the newest snapshot or anything after it, which is all a replica appends to (docs/design.md
 * §11).
 * @module
 */
import { WalsyncError } from "../errors.ts";
import * as log from "../log.ts";
import type { Store } from "../storage/store.ts";
import { enforceRetention } from "./enforce.ts";
import { DEFAULT_RETENTION_CHECK_MS, DEFAULT_RETENTION_MS } from "./options.ts";

/** Retention settings of `watch`. */
export interface RetentionOptions {
  /** The window to keep (ms); null keeps everything (no pass runs). Default 24 h. */
  retentionMs?: number | null;
  /** Time between two passes (ms). Default 1 h. */
  retentionCheckIntervalMs?: number;
  /**
   * A database's own window (config file `dbs[].retention`, docs/design.md §12): ms, null to keep
   * everything, undefined for the window above.
   */
  retentionOf?: (name: string) => number | null | undefined;
}

/** Applies retention to `names()` every check interval until stopped. */
export class BackgroundRetention {
  readonly #retentionMs: number | null;
  readonly #intervalMs: number;
  readonly #retentionOf?: (name: string) => number | null | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #pass: Promise<void> | null = null;
  #stopped = false;
  /** Called after each pass (watch reclaims memory then). */
  onPassEnd: (() => void) | null = null;
  /** Completed passes (for tests and logs). */
  passes = 0;

  constructor(readonly store: Store, readonly names: () => string[], options: RetentionOptions = {}) {
    this.#retentionMs = options.retentionMs === undefined ? DEFAULT_RETENTION_MS : options.retentionMs;
    this.#intervalMs = options.retentionCheckIntervalMs ?? DEFAULT_RETENTION_CHECK_MS;
    this.#retentionOf = options.retentionOf;
  }

  /**
   * Runs the first pass now, then one per interval. Does nothing when everything is kept and no
   * database may have a window of its own (`retentionOf`); a pass skips the databases kept forever.
   */
  start(): void {
    if ((this.#retentionMs === null && !this.#retentionOf) || this.#stopped) return;
    this.#schedule(0);
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
    for (const name of this.names()) {
      if (this.#stopped) return;
      const own = this.#retentionOf?.(name);
      const retentionMs = own === undefined ? this.#retentionMs : own;
      if (retentionMs === null) continue;
      try {
        await enforceRetention(this.store, name, Date.now() - retentionMs);
      } catch (e) {
        // Nothing stored yet is normal right after the first start; anything else is retried next pass.
        if (e instanceof WalsyncError && e.exitCode === 3) continue;
        log.warn(
          `${name}: retention pass failed (retried in ${this.#intervalMs} ms): ${(e as Error).message}`,
        );
      }
    }
    this.passes++;
    this.onPassEnd?.();
  }

  /**
   * Stops the timer and waits up to `graceMs` for a pass in progress to finish its current database.
   * A pass is never waited for longer: during a store outage its requests retry for minutes, and
   * shutdown must not hang on them. Leaving a pass unfinished is safe: a prune may stop at any moment
   * (it deletes oldest first, behind a retention mark), and the next pass finishes the work.
   */
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
