/**
 * Parsing `watch` arguments: `path` or `path:name`, with names unique across the process.
 * @module
 */
import { resolve } from "node:path";
import { usageError } from "../errors.ts";
import { defaultName, validateName } from "../layout.ts";
import type { ReplicaOptions } from "./replica.ts";

/** A database to watch and the name it is stored under. */
export interface WatchTarget {
  path: string;
  name: string;
  /** Per-database settings from the config file. */
  overrides?: Partial<ReplicaOptions>;
}

/**
 * Parses `path[:name]` arguments. The text after the last ":" is a name if it contains no "/";
 * otherwise the whole argument is a path. Two targets with one name (or one path) are an error.
 */
export function parseTargets(args: string[], cwd = Deno.cwd()): WatchTarget[] {
  const targets: WatchTarget[] = [];
  const byName = new Map<string, string>();
  const byPath = new Map<string, string>();
  for (const arg of args) {
    const colon = arg.lastIndexOf(":");
    const explicit = colon > 0 && !arg.slice(colon + 1).includes("/") ? arg.slice(colon + 1) : undefined;
    const path = resolve(cwd, explicit === undefined ? arg : arg.slice(0, colon));
    const name = validateName(explicit ?? defaultName(path));
    if (byPath.has(path)) throw usageError(`${path} is given twice`);
    const other = byName.get(name);
    if (other) {
      throw usageError(
        `${other} and ${path} would both be stored as "${name}"; give one an explicit name, e.g. ${path}:${name}-2`,
      );
    }
    byName.set(name, path);
    byPath.set(path, name);
    targets.push({ path, name });
  }
  return targets;
}
