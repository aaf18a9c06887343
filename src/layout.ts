/**
 * How backups are laid out in a store (docs/design.md §4):
 *
 * ```
 * <name>/snapshots/<generation>-<YYYYMMDDHHMMSSmmm>.db
 * <name>/wal/<generation>-<YYYYMMDDHHMMSSmmm>.wal
 * <name>/state.json
 * ```
 * @module
 */
import { stampNow } from "./clock.ts";
import { usageError } from "./errors.ts";

/** Names are used as key segments: keep them to a safe, portable set of characters. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Checks a database name given by the user or derived from a file name. */
export function validateName(name: string): string {
  if (!NAME.test(name)) {
    throw usageError(
      `invalid database name "${name}": use letters, digits, ".", "_" and "-" (at most 128, not starting with a symbol)`,
    );
  }
  return name;
}

/** The default name of a database: its file name without a `.db`/`.sqlite`/`.sqlite3` extension. */
export function defaultName(path: string): string {
  const base = path.split("/").filter(Boolean).pop() ?? path;
  return base.replace(/\.(db|sqlite3?)$/i, "");
}

/** Formats a time as YYYYMMDDHHMMSSmmm (UTC). */
export function formatTimestamp(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}${pad(d.getUTCHours())}` +
    `${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}${pad(d.getUTCMilliseconds(), 3)}`;
}

/** Parses YYYYMMDDHHMMSSmmm (UTC) back into milliseconds since the epoch. */
export function parseTimestamp(text: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{3})$/.exec(text);
  if (!m) throw new Error(`bad timestamp ${text}`);
  const [, y, mo, d, h, mi, s, ms] = m.map(Number);
  return Date.UTC(y, mo - 1, d, h, mi, s, ms);
}

/** Formats a generation number as 8 decimal digits. */
export function formatGeneration(generation: number): string {
  return String(generation).padStart(8, "0");
}

/** The kind of a stored object, from its key ("pages": a compacted page set, src/compact/key.ts). */
export type ObjectKind = "snapshot" | "segment" | "pages";

/** A snapshot or segment key, decoded. */
export interface BackupObject {
  key: string;
  name: string;
  kind: ObjectKind;
  generation: number;
  /** Milliseconds since the epoch (UTC), from the key. */
  time: number;
  size: number;
}

const OBJECT_KEY = /^([^/]+)\/(snapshots|wal)\/(\d{8})-(\d{17})\.(db|wal)$/;

/** Decodes a key of a snapshot or segment; returns null for any other key. */
export function parseObjectKey(key: string, size = 0): BackupObject | null {
  const m = OBJECT_KEY.exec(key);
  if (!m) return null;
  const kind: ObjectKind = m[2] === "snapshots" ? "snapshot" : "segment";
  if ((kind === "snapshot") !== (m[5] === "db")) return null;
  return { key, name: m[1], kind, generation: Number(m[3]), time: parseTimestamp(m[4]), size };
}

/** The key of a snapshot. */
export function snapshotKey(name: string, generation: number, time: number): string {
  return `${name}/snapshots/${formatGeneration(generation)}-${formatTimestamp(time)}.db`;
}

/** The key of a WAL segment. */
export function segmentKey(name: string, generation: number, time: number): string {
  return `${name}/wal/${formatGeneration(generation)}-${formatTimestamp(time)}.wal`;
}

/** The key of a database's state hint. */
export function stateKey(name: string): string {
  return `${name}/state.json`;
}

/**
 * Object times within a database must strictly increase: never reuse or go back (a clock step, or a
 * restart on a host whose clock is behind). `now` defaults to the stamping clock (src/clock.ts).
 */
export function nextTime(last: number | undefined, now = stampNow()): number {
  return last !== undefined && now <= last ? last + 1 : now;
}
