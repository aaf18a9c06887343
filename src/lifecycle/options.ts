/**
 * Retention flags: `--retention` (a duration, or `0`/`forever` to keep everything) and
 * `--retention-check-interval`.
 * @module
 */
import { parseDuration } from "../duration.ts";
import { usageError } from "../errors.ts";

/** The default retention window: 24 hours. */
export const DEFAULT_RETENTION_MS = 24 * 3_600_000;
/** The default time between two retention passes of `watch`: 1 hour. */
export const DEFAULT_RETENTION_CHECK_MS = 3_600_000;

/** Parses `--retention`: milliseconds, or null for "keep everything" (`0`, `forever`). */
export function parseRetention(text: string | undefined, flag = "--retention"): number | null {
  if (text === undefined) return DEFAULT_RETENTION_MS;
  const trimmed = String(text).trim().toLowerCase();
  if (trimmed === "forever" || /^0+(\.0*)?(ms|s|m|h|d)?$/.test(trimmed)) return null;
  const ms = parseDuration(trimmed);
  if (ms === null) {
    throw usageError(
      `invalid ${flag} "${text}": use a duration such as 1h or 7d, or 0/forever to keep everything`,
    );
  }
  return ms;
}

/** Parses a positive duration flag (e.g. `--retention-check-interval`), or returns `fallback` when absent. */
export function parseInterval(text: string | undefined, flag: string, fallback: number): number {
  if (text === undefined) return fallback;
  const ms = parseDuration(text);
  if (ms === null) throw usageError(`invalid ${flag} "${text}": use a duration such as 30s, 5m or 1h`);
  return ms;
}
