/**
 * Durations as operators write them: `500ms`, `15s`, `5m`, `1h`, `7d`, or a bare number of seconds
 * (`1.5` = 1500 ms). Used by the command-line flags and the config file alike.
 * @module
 */

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h|d)?$/;

/**
 * Parses `text` into milliseconds. Returns null when it is not a duration (the caller names the
 * flag or key in its error). Zero and negative durations are not durations.
 */
export function parseDuration(text: string | number): number | null {
  const match = DURATION.exec(String(text).trim());
  if (!match) return null;
  const ms = Number(match[1]) * UNIT_MS[match[2] ?? "s"];
  if (!Number.isFinite(ms) || ms <= 0) return null;
  return Math.round(ms) || null;
}

/** Formats milliseconds compactly for messages: `500ms`, `15s`, `1.5s`, `5m`, `2h`, `7d`. */
export function formatDuration(ms: number): string {
  for (const unit of ["d", "h", "m", "s"]) {
    const size = UNIT_MS[unit];
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return ms >= 1000 ? `${ms / 1000}s` : `${ms}ms`;
}

/** A short human description of "how long": `42s`, `3m 5s`, `2h 10m`, `3d 4h` (at most two units). */
export function formatAge(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}
