/**
 * Globs in the config's `path` (`/srv/tenants/*.db`, `/srv/* /app.db`): `*`, `?` and `[...]` within
 * one path component. They are expanded at start ({@link expandTargets}) and re-expanded by a poll
 * while running ({@link watchGlobs}): new matches are picked up, removed ones reported. No file
 * watcher: a poll of a few directories is cheap and never misses anything.
 * @module
 */
import { join } from "node:path";
import { usageError } from "../errors.ts";
import { defaultName, validateName } from "../layout.ts";
import * as log from "../log.ts";
import type { WatchTarget } from "../watch/targets.ts";
import { realDatabasePath } from "../sqlite/real_path.ts";
import type { DatabaseConfig, WatchConfig } from "./load.ts";

/** Default time between two glob scans. */
export const DEFAULT_SCAN_INTERVAL_MS = 10_000;
/** The longest wait before a database that could not be watched is tried again. */
const MAX_RETRY_MS = 5 * 60_000;

const WILDCARD = /[*?[]/;
/** Files beside a database that are never databases themselves. */
const COMPANION = /-(wal|shm|journal)$|\.walsync-restore-|^\./;

/** True when `path` contains a wildcard. */
export function isGlob(path: string): boolean {
  return WILDCARD.test(path);
}

/** The directory before the first component with a wildcard (must exist when the watch starts). */
export function globBase(pattern: string): string {
  const parts = pattern.split("/");
  const first = parts.findIndex((p) => WILDCARD.test(p));
  return parts.slice(0, first).join("/") || "/";
}

/** A regular expression for one path component (`*`, `?`, `[abc]`, `[!abc]`). */
function componentRegex(glob: string): RegExp {
  let source = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "*") source += "[^/]*";
    else if (c === "?") source += "[^/]";
    else if (c === "[") {
      const end = glob.indexOf("]", i + 2);
      if (end < 0) source += "\\[";
      else {
        const body = glob.slice(i + 1, end).replace(/^!/, "^").replace(/\\/g, "\\\\");
        source += `[${body}]`;
        i = end;
      }
    } else source += c.replace(/[.+^${}()|\\\]]/g, "\\$&");
  }
  return new RegExp(`^${source}$`);
}

/** The regular files matching `pattern` (absolute), sorted; companions (-wal, -shm, ...) skipped. */
export async function expandGlob(pattern: string): Promise<string[]> {
  const parts = pattern.split("/").filter(Boolean);
  let dirs = ["/"];
  const found: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const last = i === parts.length - 1;
    const part = parts[i];
    const next: string[] = [];
    for (const dir of dirs) {
      if (!WILDCARD.test(part)) {
        next.push(join(dir, part));
        continue;
      }
      const regex = componentRegex(part);
      try {
        for await (const entry of Deno.readDir(dir)) {
          if (regex.test(entry.name) && !COMPANION.test(entry.name)) next.push(join(dir, entry.name));
        }
      } catch { /* unreadable or gone: no matches there */ }
    }
    if (last) {
      for (const path of next) {
        const stat = await Deno.stat(path).catch(() => null);
        if (stat?.isFile) found.push(path);
      }
    }
    dirs = next;
  }
  return found.sort();
}

/** A watch target with the per-database overrides of its config entry. */
export type ConfiguredTarget = WatchTarget & {
  overrides?: { snapshotIntervalMs?: number; checkpointFrames?: number };
};

function targetOf(db: DatabaseConfig, path: string): ConfiguredTarget {
  const overrides: ConfiguredTarget["overrides"] = {};
  if (db.snapshotIntervalMs !== undefined) overrides.snapshotIntervalMs = db.snapshotIntervalMs;
  if (db.checkpointFrames !== undefined) overrides.checkpointFrames = db.checkpointFrames;
  // SQLite keeps the WAL beside the real file: read there; the default name comes from the path given.
  const target: ConfiguredTarget = {
    path: realDatabasePath(path),
    given: path,
    name: db.name ?? defaultName(path),
    overrides,
  };
  if (db.retentionMs !== undefined) target.retentionMs = db.retentionMs;
  return target;
}

/**
 * The databases of `config` now: plain paths as given, globs expanded. Two databases that would be
 * stored under one name are a usage error naming both config lines (nothing has been uploaded yet).
 */
export async function expandTargets(config: WatchConfig): Promise<ConfiguredTarget[]> {
  const targets: ConfiguredTarget[] = [];
  const byName = new Map<string, { path: string; where: string }>();
  const byPath = new Set<string>();
  for (const db of config.dbs) {
    const paths = db.glob ? await expandGlob(db.path) : [db.path];
    if (db.glob && paths.length === 0) log.info(`${db.where}: no database matches ${db.path} yet`);
    for (const path of paths) {
      if (byPath.has(path)) continue; // a plain entry and a glob may both cover a file: the first wins
      const target = targetOf(db, path);
      try {
        validateName(target.name);
      } catch (e) {
        throw usageError(`${db.where}: path: ${path}: ${(e as Error).message}`);
      }
      const other = byName.get(target.name);
      if (other) {
        throw usageError(
          `${db.where}: path: ${path} and ${other.path} (${other.where}) would both be stored as ` +
            `"${target.name}"; list one on its own with a name:`,
        );
      }
      byName.set(target.name, { path, where: db.where });
      byPath.add(path);
      targets.push(target);
    }
  }
  return targets;
}

/**
 * Polls the globs of `config` every `scan-interval` (default 10 s) and reports changes against
 * `initial` (what {@link expandTargets} returned): `onAdded` for a new match (return false when it
 * could not be watched: it is tried again once the file changes), `onRemoved` for a match that is
 * gone. A new match whose name is already used is reported once and skipped. Calls never overlap.
 * Returns a function that stops the poll.
 */
export function watchGlobs(
  config: WatchConfig,
  initial: WatchTarget[],
  onAdded: (target: ConfiguredTarget) => Promise<boolean> | boolean,
  onRemoved: (target: WatchTarget) => Promise<void> | void,
): () => void {
  const globs = config.dbs.filter((db) => db.glob);
  const scanMs = config.scanIntervalMs ?? DEFAULT_SCAN_INTERVAL_MS;
  if (globs.length === 0) return () => {};
  const known = new Map(initial.map((t) => [t.path, t]));
  const globbed = new Set<string>();
  for (const db of globs) for (const t of initial) if (componentsMatch(db.path, t.path)) globbed.add(t.path);
  /**
   * Paths that could not be watched or named: tried again once the file changed, but not before
   * `retryAt` (doubling up to {@link MAX_RETRY_MS}), so that a busy database that cannot be watched
   * (e.g. its lease is held elsewhere) is not retried and reported at every scan.
   */
  const refused = new Map<string, { mtime: number; retryAt: number; waitMs: number }>();
  const refuse = (path: string, mtime: number) => {
    const waitMs = Math.min((refused.get(path)?.waitMs ?? scanMs / 2) * 2, MAX_RETRY_MS);
    refused.set(path, { mtime, retryAt: Date.now() + waitMs, waitMs });
  };
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const scan = async () => {
    const seen = new Set<string>();
    for (const db of globs) {
      for (const path of await expandGlob(db.path)) {
        seen.add(path);
        if (known.has(path) || stopped) continue;
        const mtime = (await Deno.stat(path).catch(() => null))?.mtime?.getTime() ?? 0;
        const before = refused.get(path);
        if (before && (before.mtime === mtime || Date.now() < before.retryAt)) continue;
        const target = targetOf(db, path);
        const clash = [...known.values()].find((t) => t.name === target.name);
        if (clash) {
          log.warn(`${path} matches ${db.path} but "${target.name}" is already ${clash.path}; not watched`);
          refuse(path, mtime);
          continue;
        }
        log.info(`${target.name}: new database ${path} (matches ${db.path})`, {
          database: target.name,
          path,
          glob: db.path,
        });
        if (await onAdded(target)) {
          known.set(path, target);
          globbed.add(path);
          refused.delete(path);
        } else refuse(path, mtime);
      }
    }
    for (const path of [...globbed]) {
      if (seen.has(path) || stopped) continue;
      const target = known.get(path)!;
      log.warn(`${target.name}: ${path} no longer exists; replication of it stopped`, {
        database: target.name,
        path,
      });
      known.delete(path);
      globbed.delete(path);
      await onRemoved(target);
    }
  };
  const loop = async () => {
    if (stopped) return;
    try {
      await scan();
    } catch (e) {
      log.warn(`scanning ${globs.map((g) => g.path).join(", ")} failed: ${(e as Error).message}`);
    }
    if (!stopped) timer = setTimeout(loop, scanMs);
  };
  timer = setTimeout(loop, scanMs);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/** Whether `path` matches the glob `pattern` component by component. */
function componentsMatch(pattern: string, path: string): boolean {
  const p = pattern.split("/");
  const q = path.split("/");
  return p.length === q.length && p.every((part, i) => componentRegex(part).test(q[i]));
}
