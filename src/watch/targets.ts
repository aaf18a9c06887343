/**
 * Parsing `watch` arguments: `path` or `path:name`, with names unique across the process.
 * @module
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { usageError } from "../errors.ts";
import { defaultName, validateName } from "../layout.ts";
import type { ReplicaOptions } from "./replica.ts";
import * as log from "../log.ts";
import { realDatabasePath } from "../sqlite/real_path.ts";

/** A database to watch and the name it is stored under. */
export interface WatchTarget {
  /** The real path (every symbolic link resolved): SQLite keeps the -wal and -shm beside it. */
  path: string;
  name: string;
  /** Per-database settings from the config file. */
  overrides?: Partial<ReplicaOptions>;
  /** Per-database retention window from the config file (ms); null keeps everything. */
  retentionMs?: number | null;
  /** The path as the user gave it (absolute); the default name comes from it. */
  given: string;
}

/**
 * Parses `path[:name]` arguments. An argument that names an existing file is a path, even if it
 * contains a ":"; otherwise the text after the last ":" is a name if it contains no "/". Each path
 * is resolved to the real file SQLite uses (see {@link realDatabasePath}); the default name comes
 * from the path as given. Two targets with one name, or one real file given twice, are an error.
 */
export function parseTargets(args: string[], cwd = Deno.cwd()): WatchTarget[] {
  const targets: WatchTarget[] = [];
  const byName = new Map<string, string>();
  const byPath = new Map<string, string>();
  for (const arg of args) {
    const colon = arg.lastIndexOf(":");
    const isPath = colon <= 0 || arg.slice(colon + 1).includes("/") || existsSync(resolve(cwd, arg));
    const explicit = isPath ? undefined : arg.slice(colon + 1);
    const given = resolve(cwd, explicit === undefined ? arg : arg.slice(0, colon));
    const name = explicit === undefined ? defaultNameOf(given) : validateName(explicit);
    const path = realDatabasePath(given);
    const same = byPath.get(path);
    if (same !== undefined) {
      throw usageError(
        same === given ? `${given} is given twice` : `${same} and ${given} are the same database (${path})`,
      );
    }
    const other = byName.get(name);
    if (other) {
      throw usageError(
        `${other} and ${given} would both be stored as "${name}"; give one an explicit name, e.g. ${given}:${name}-2`,
      );
    }
    if (path !== given) {
      log.info(`${given} resolves to ${path}: watching that file (SQLite keeps its WAL there)`);
    }
    byName.set(name, given);
    byPath.set(path, given);
    targets.push({ path, name, given });
  }
  return targets;
}

/** The default name of `path`, or a usage error that says how to give one. */
function defaultNameOf(path: string): string {
  try {
    return validateName(defaultName(path));
  } catch (e) {
    throw usageError(`${(e as Error).message}; give the database a name: ${path}:NAME`);
  }
}
