/**
 * A bounded pool shared by every database of a `watch` process: at most N syncs (and starts) run
 * at the same time, so that the number of uploads in flight, open requests and memory stay bounded
 * however many databases are watched. Waiters are served in arrival order.
 * @module
 */

/** A counting semaphore. */
export class SyncPool {
  #free: number;
  readonly #waiting: (() => void)[] = [];

  /** @param size how many tasks may run at once (at least 1) */
  constructor(readonly size: number) {
    this.#free = Math.max(1, Math.floor(size));
  }

  /** How many tasks are waiting for a slot (for logs and tests). */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Runs `task` once a slot is free; the slot is given back when it settles. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    await this.#acquire();
    try {
      return await task();
    } finally {
      this.#release();
    }
  }

  #acquire(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  #release(): void {
    const next = this.#waiting.shift();
    if (next) next(); // the slot passes straight to the next waiter
    else this.#free++;
  }
}
