/**
 * The output side of `restore`: checking what is already at the output path, creating the
 * temporary file beside it, and moving the verified result into place without leaving anything of
 * the database it replaces (docs/design.md §6).
 *
 * A database is not one file: SQLite keeps `-wal`, `-shm` and `-journal` beside it, and the next
 * open replays an old `-wal` (or rolls back an old `-journal`) onto whatever file now has the name.
 * So those files count as "the output exists", and `--force` removes them before the rename.
 * @module
 */
import { basename, dirname } from "node:path";
import { ExitCode, notFoundError, usageError, WalsyncError } from "../errors.ts";
import { syncDir } from "../storage/file.ts";

/** The files SQLite keeps beside a database, which belong to it. */
export const SIDECARS = ["-wal", "-shm", "-journal"] as const;

/** What is at the output path before the restore. */
export interface ExistingOutput {
  /** The database file itself exists. */
  database: boolean;
  /** Sidecar files (full paths) that exist. */
  sidecars: string[];
  /** The permission bits of the existing database file, if any. */
  mode: number | null;
}

async function lstatOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.lstat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** Looks at the output path and its sidecars; refuses anything that is not a regular file. */
export async function inspectOutput(output: string): Promise<ExistingOutput> {
  const info = await lstatOrNull(output);
  if (info && !info.isFile) throw usageError(`${output} exists and is not a regular file`);
  const sidecars: string[] = [];
  for (const suffix of SIDECARS) {
    const path = output + suffix;
    const side = await lstatOrNull(path);
    if (!side) continue;
    if (!side.isFile) throw usageError(`${path} exists and is not a regular file`);
    sidecars.push(path);
  }
  return { database: info !== null, sidecars, mode: info?.mode != null ? info.mode & 0o777 : null };
}

/** The error for an output (or a file of its database) that exists without --force. */
export function outputExists(output: string, existing: ExistingOutput): WalsyncError {
  const what = existing.database ? output : `${existing.sidecars.join(", ")} (of ${output})`;
  return new WalsyncError(`${what} already exists; use --force to replace it`, ExitCode.Exists);
}

/** Checks that the output's directory exists and is a directory. */
export async function checkOutputDir(output: string): Promise<string> {
  const dir = dirname(output);
  try {
    if (!(await Deno.stat(dir)).isDirectory) throw usageError(`${dir} is not a directory`);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw notFoundError(`output directory ${dir} does not exist`);
    throw e;
  }
  return dir;
}

/** A temporary file beside the output that becomes the output once verified. */
export interface TempOutput {
  path: string;
  file: Deno.FsFile;
  /** Removes the temporary file and anything SQLite may have put beside it (synchronous: signal-safe). */
  remove(): void;
}

/**
 * Creates the temporary file beside `output`, with the permissions of the database it replaces
 * (or 0600: a restored database may hold anything, so it is private until the user says otherwise).
 */
export async function createTemp(output: string, mode: number | null): Promise<TempOutput> {
  const path = `${dirname(output)}/.${basename(output)}.walsync-restore-${crypto.randomUUID().slice(0, 8)}`;
  const wanted = mode ?? 0o600;
  const file = await Deno.open(path, { write: true, read: true, createNew: true, mode: wanted & 0o777 });
  // open() applies the umask; chmod sets exactly the bits wanted.
  await Deno.chmod(path, wanted);
  return {
    path,
    file,
    remove() {
      for (const p of [path, ...SIDECARS.map((s) => path + s)]) {
        try {
          Deno.removeSync(p);
        } catch { /* not there */ }
      }
    },
  };
}

/**
 * Moves the verified temporary file to `output`. With `force`, the old database's sidecars are
 * removed first (a stale `-wal` would be replayed onto the restored file), then the file is renamed
 * over the output. Without it, a hard link refuses to replace anything that appeared meanwhile.
 */
export async function moveIntoPlace(temp: string, output: string, force: boolean): Promise<void> {
  if (force) {
    for (const suffix of SIDECARS) {
      await Deno.remove(output + suffix).catch((e) => {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      });
    }
    await Deno.rename(temp, output);
  } else {
    const appeared = await inspectOutput(output);
    if (appeared.database || appeared.sidecars.length) throw outputExists(output, appeared);
    try {
      await Deno.link(temp, output);
    } catch (e) {
      if (e instanceof Deno.errors.AlreadyExists) throw outputExists(output, await inspectOutput(output));
      throw e;
    }
    await Deno.remove(temp);
  }
  await syncDir(dirname(output));
}
