/**
 * The `HOST:PORT` form of `--metrics-addr` (and of `metrics-addr:` in a config file).
 * @module
 */

/** Parses `HOST:PORT`, `:PORT` or `PORT` (host defaults to 127.0.0.1); null when malformed. */
export function parseAddress(text: string): { hostname: string; port: number } | null {
  const m = /^(?:(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]*):)?(\d{1,5})$/.exec(text.trim());
  if (!m) return null;
  const port = Number(m[2]);
  if (port > 65535) return null;
  return { hostname: (m[1] || "127.0.0.1").replace(/^\[|\]$/g, ""), port };
}
