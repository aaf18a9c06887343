/**
 * Small statistics helpers.
 * @module
 */

/** The `p`-th percentile (0–100) of `values`, nearest-rank; null when empty. */
export function percentile(values: number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** The median of `values`; null when empty. */
export function median(values: number[]): number | null {
  return percentile(values, 50);
}

/** The arithmetic mean of `values`; null when empty. */
export function mean(values: number[]): number | null {
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : null;
}
