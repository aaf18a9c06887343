/**
 * Finding the file SQLite really uses. SQLite resolves symbolic links (to the file, in a parent
 * directory, relative ones, chains of them) and keeps the `-wal` and `-shm` files beside the real
 * file, so walsync must read the same real path, or it would back up a database without its WAL.
 * The database's name in the backup still comes from the path the user gave.
 * @module
 */
import { basename, dirname, resolve } from "node:path";
import { usageError, WalsyncError } from "../errors.ts";

/**
 * The absolute real path of the database `path` (relative to `cwd`), every symbolic link resolved.
 * A database that does not exist (yet) resolves through its directory, where SQLite would create it;
 * if that does not exist either, the absolute path is returned as is (opening it reports it missing).
 * @throws WalsyncError for a link loop (exit 2) or an unreadable directory (exit 1)
 */
export function realDatabasePath(path: string, cwd = Deno.cwd()): string {
  const absolute = resolve(cwd, path);
  try {
    return Deno.realPathSync(absolute);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw resolveError(absolute, e);
  }
  try {
    return resolve(Deno.realPathSync(dirname(absolute)), basename(absolute));
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw resolveError(absolute, e);
    return absolute;
  }
}

function resolveError(path: string, e: unknown): WalsyncError {
  if (e instanceof Deno.errors.FilesystemLoop || /too many levels of symbolic links/i.test(String(e))) {
    return usageError(`cannot open ${path}: symbolic links loop`);
  }
  if (e instanceof Deno.errors.PermissionDenied) {
    return new WalsyncError(`cannot resolve ${path}: permission denied`);
  }
  return new WalsyncError(`cannot resolve ${path}: ${(e as Error).message}`);
}
