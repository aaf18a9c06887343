/**
 * Why one watched database is not being replicated right now, logged without flooding: a reason is
 * logged when it is new and again every report interval while it lasts, and its end once.
 * @module
 */
import * as log from "../log.ts";

/** The current problem of one database, and when it was last logged. */
export class ProblemLog {
  /** The reason (its key) while the database is not replicating; null when all is well. */
  current: string | null = null;
  #reportedAt = -Infinity;

  /** `intervalMs`: how long a lasting reason stays quiet before it is logged again. */
  constructor(readonly name: string, readonly intervalMs: number) {}

  /**
   * Records `message` as the reason; logs it when it is new or the interval has passed. `key`
   * identifies the reason (default: the message itself), so that a message with changing details
   * (an error text) does not count as new each time.
   */
  report(message: string, level: "error" | "warn" = "error", key = message): void {
    const now = performance.now();
    if (this.current !== key || now - this.#reportedAt >= this.intervalMs) {
      (level === "error" ? log.error : log.warn)(`${this.name}: ${message}`);
      this.#reportedAt = now;
    }
    this.current = key;
  }

  /** The database replicates again: says so once, if there was a problem. */
  recovered(): void {
    if (this.current !== null) log.info(`${this.name}: replicating again (was: ${this.current})`);
    this.current = null;
  }
}
