/**
 * A bounded record of durations (how long walsync held the application's write lock): the count,
 * the maximum, and the most recent values for percentiles. Memory stays fixed however long it runs.
 * @module
 */

/** Durations in milliseconds: keeps the last `capacity` values, plus count and maximum of all. */
export class DurationSample {
  #values: number[] = [];
  #next = 0;
  count = 0;
  max = 0;

  constructor(readonly capacity = 256) {}

  /** Records one duration. */
  add(ms: number): void {
    this.count++;
    if (ms > this.max) this.max = ms;
    if (this.#values.length < this.capacity) this.#values.push(ms);
    else this.#values[this.#next] = ms;
    this.#next = (this.#next + 1) % this.capacity;
  }

  /** The recent values (at most `capacity`), in no particular order. */
  values(): number[] {
    return [...this.#values];
  }

  /** The p-th percentile (0..100) of the recent values; 0 when there are none. */
  percentile(p: number): number {
    const sorted = this.values().sort((a, b) => a - b);
    if (sorted.length === 0) return 0;
    const rank = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
    return sorted[Math.max(0, rank)];
  }
}
