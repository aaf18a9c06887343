/**
 * Opening a user's database safely: checks that the path is a SQLite file, and opens the
 * connections walsync uses (a read-only one to hold read transactions, a writable one only for
 * the short write-lock barrier and checkpoints).
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { notFoundError, usageError, WalsyncError } from "../errors.ts";
import { readAt } from "../wal.ts";
import { type DbHeader, parseDbHeader } from "./db_header.ts";

/** How long SQLite waits for a lock before reporting busy, in milliseconds. */
export const BUSY_TIMEOUT_MS = 5000;

/** Reads and validates the header of the database at `path`; clear errors for bad input. */
export async function readDbHeader(path: string): Promise<DbHeader> {
  let file: Deno.FsFile;
  try {
    const stat = await Deno.stat(path);
    if (!stat.isFile) throw usageError(`${path} is not a regular file`);
    file = await Deno.open(path, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw notFoundError(`database ${path} does not exist`);
    if (e instanceof Deno.errors.PermissionDenied) {
      throw new WalsyncError(`cannot read ${path}: permission denied`);
    }
    throw e;
  }
  try {
    const bytes = new Uint8Array(100);
    const n = await readAt(file, 0, bytes);
    if (n === 0) throw usageError(`${path} is empty: not a SQLite database (nothing to back up)`);
    const header = n === 100 ? parseDbHeader(bytes) : null;
    if (!header) throw usageError(`${path} is not a SQLite database (bad header)`);
    return header;
  } finally {
    file.close();
  }
}

/** Opens a read-only connection; it never checkpoints, so closing it never changes the WAL. */
export function openReader(path: string): DatabaseSync {
  return wrapOpen(path, () => new DatabaseSync(path, { readOnly: true, timeout: BUSY_TIMEOUT_MS }));
}

/** Opens a read-write connection (for BEGIN IMMEDIATE barriers and checkpoints). */
export function openWriter(path: string): DatabaseSync {
  return wrapOpen(path, () => new DatabaseSync(path, { timeout: BUSY_TIMEOUT_MS }));
}

function wrapOpen(path: string, open: () => DatabaseSync): DatabaseSync {
  try {
    return open();
  } catch (e) {
    throw new WalsyncError(`cannot open database ${path}: ${(e as Error).message}`);
  }
}

/** Starts a read transaction on `db` (BEGIN is deferred; the first read takes the snapshot). */
export function beginRead(db: DatabaseSync): void {
  db.exec("BEGIN");
  db.prepare("SELECT count(*) FROM sqlite_schema").get();
}

/** Ends whatever transaction `db` has open. */
export function endTransaction(db: DatabaseSync): void {
  if (db.isTransaction) db.exec("ROLLBACK");
}

/**
 * Takes the write lock with BEGIN IMMEDIATE (waiting up to the busy timeout). Returns false if the
 * database stayed locked; nothing is written either way.
 */
export function tryWriteLock(db: DatabaseSync): boolean {
  try {
    db.exec("BEGIN IMMEDIATE");
    return true;
  } catch (e) {
    if (/locked|busy/i.test((e as Error).message)) return false;
    throw e;
  }
}
