/**
 * Opening a user's database safely: checks that the path is a SQLite file, and opens the
 * connections walsync uses (a read-only one to hold read transactions, a writable one only for
 * the short write-lock barrier and checkpoints).
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { notFoundError, osErrorReason, usageError, WalsyncError } from "../errors.ts";
import { accessSync, constants, existsSync, fstatSync } from "node:fs";
import { dirname } from "node:path";
import { closeFd, openForRead, readAt } from "../wal.ts";
import { type DbHeader, parseDbHeader } from "./db_header.ts";

/** How long SQLite waits for a lock before reporting busy, in milliseconds. */
export const BUSY_TIMEOUT_MS = 5000;

/**
 * The user's database file, opened by walsync itself for reading pages and the header.
 *
 * POSIX advisory locks belong to the process: closing *any* descriptor of a file drops every lock
 * the process holds on it, SQLite's included (SQLite only guards against this for descriptors it
 * opened itself). If walsync closed its own descriptor while a connection was open, the database
 * file's SHARED lock would silently vanish, and an application closing its last connection could
 * then checkpoint and delete the WAL under walsync's read transaction. So this handle is opened
 * before any connection and closed only after all of them are closed.
 */
export class DbFile {
  private constructor(readonly path: string, readonly fd: number, readonly ino: number) {}

  /** Opens and validates `path` (exists, regular file, SQLite header); clear errors for bad input. */
  static async open(path: string): Promise<{ dbFile: DbFile; header: DbHeader }> {
    let fd: number | null;
    try {
      const stat = await Deno.stat(path);
      if (!stat.isFile) throw usageError(`${path} is not a regular file`);
      fd = openForRead(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) throw notFoundError(`database ${path} does not exist`);
      if (e instanceof Deno.errors.PermissionDenied || (e as { code?: string }).code === "EACCES") {
        throw new WalsyncError(`cannot read ${path}: permission denied`);
      }
      throw e;
    }
    if (fd === null) throw notFoundError(`database ${path} does not exist`);
    const dbFile = new DbFile(path, fd, fstatSync(fd).ino);
    try {
      return { dbFile, header: dbFile.readHeader() };
    } catch (e) {
      dbFile.close();
      throw e;
    }
  }

  /** Reads and validates the database header as it is now. */
  readHeader(): DbHeader {
    const bytes = new Uint8Array(100);
    const n = readAt(this.fd, 0, bytes);
    if (n === 0) throw usageError(`${this.path} is empty: not a SQLite database (nothing to back up)`);
    const header = n === 100 ? parseDbHeader(bytes) : null;
    if (!header) throw usageError(`${this.path} is not a SQLite database (bad header)`);
    return header;
  }

  /** Reads into `into` from `offset`; returns the number of bytes read (short at end of file). */
  read(offset: number, into: Uint8Array): number {
    return readAt(this.fd, offset, into);
  }

  /** Current size of the file. */
  size(): number {
    return fstatSync(this.fd).size;
  }

  /** Closes the descriptor: only once every SQLite connection to this file is closed. */
  close(): void {
    closeFd(this.fd);
  }
}

/** Opens a read-only connection; it never checkpoints, so closing it never changes the WAL. */
export function openReader(path: string): DatabaseSync {
  const db = wrapOpen(path, () => new DatabaseSync(path, { readOnly: true, timeout: BUSY_TIMEOUT_MS }));
  // walsync reads `${path}-wal` itself: it must be the WAL SQLite uses (see sqlite/real_path.ts).
  const file = (db.prepare("PRAGMA database_list").get() as { file?: string } | undefined)?.file;
  if (file && file !== path) {
    db.close();
    throw new WalsyncError(`${path}: SQLite opens it as ${file} and keeps its WAL there; not backing it up`);
  }
  return db;
}

/** Opens a read-write connection (for BEGIN IMMEDIATE barriers and checkpoints). */
export function openWriter(path: string): DatabaseSync {
  checkWritable(path);
  return wrapOpen(path, () => new DatabaseSync(path, { timeout: BUSY_TIMEOUT_MS }));
}

/**
 * SQLite silently opens a file it cannot write read-only, and then `BEGIN IMMEDIATE` succeeds without
 * taking any lock: the barrier would protect nothing and checkpoints would fail. So the database,
 * its -wal and -shm (or the directory, to create them) must be writable. access(2) checks this
 * without opening the file (closing a descriptor would drop SQLite's locks, see DbFile).
 */
export function checkWritable(path: string): void {
  const files = [path, `${path}-wal`, `${path}-shm`];
  const missing = files.some((f) => !existsSync(f));
  for (const file of missing ? [...files.filter((f) => existsSync(f)), dirname(path)] : files) {
    try {
      accessSync(file, constants.W_OK);
    } catch (e) {
      throw new WalsyncError(
        `cannot take the write lock of ${path}: ${file} is not writable (${
          osErrorReason(e) ?? e
        }); walsync ` +
          `needs write access to the database, its -wal and -shm files for its short write-lock barrier and checkpoints`,
      );
    }
  }
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
 * Takes the write lock with BEGIN IMMEDIATE, trying for up to `timeoutMs` without yielding. Returns
 * false if the database stayed locked; nothing is written either way. Keep `timeoutMs` to a few
 * milliseconds: this blocks the event loop (see {@link acquireWriteLock} for longer waits).
 *
 * It polls instead of using SQLite's busy handler: the handler sleeps 1, 2, 5, 10 ... ms between
 * attempts, and an application committing back to back releases the lock for only microseconds,
 * so a sleeping waiter almost never gets it (measured: 100 ms of busy_timeout failed every time
 * against a tight writer loop; polling got the lock in about 1 ms in 9 of 10 rounds).
 */
export function tryWriteLock(db: DatabaseSync, timeoutMs = 2): boolean {
  db.exec("PRAGMA busy_timeout = 0");
  const deadline = performance.now() + timeoutMs;
  while (true) {
    try {
      db.exec("BEGIN IMMEDIATE");
      return true;
    } catch (e) {
      if (/readonly|read-only/i.test((e as Error).message)) throw readOnlyError(db, e);
      if (!/locked|busy/i.test((e as Error).message)) throw e;
      if (performance.now() >= deadline) return false;
    }
  }
}

/** The file a connection has open (SQLite's own resolved path). */
function fileOf(db: DatabaseSync): string {
  try {
    return (db.prepare("PRAGMA database_list").get() as { file?: string } | undefined)?.file ||
      "the database";
  } catch {
    return "the database";
  }
}

function readOnlyError(db: DatabaseSync, e: unknown): WalsyncError {
  const file = fileOf(db);
  return new WalsyncError(
    `cannot take the write lock of ${file}: ${(e as Error).message} (walsync needs write access to ` +
      `${file}, ${file}-wal and ${file}-shm for its short write-lock barrier and checkpoints)`,
  );
}

/** How a cooperative wait for the write lock proceeds (see {@link acquireWriteLock}). */
export interface LockWaitOptions {
  /** Synchronous polling per try, in milliseconds (the event loop is blocked this long at most). */
  burstMs?: number;
  /** Stops waiting (the promise rejects with the signal's reason) when aborted. */
  signal?: AbortSignal;
}

/**
 * Takes the write lock cooperatively: short synchronous tries of `burstMs` (default 2 ms), each
 * followed by a pause of 5 to 15 ms on a timer, so that the rest of the process (other databases,
 * signals) goes on while one database is busy. Returns false if the lock stayed busy for
 * `totalMs`; rejects at once if `signal` is aborted.
 */
export async function acquireWriteLock(
  db: DatabaseSync,
  totalMs: number,
  options: LockWaitOptions | number = {},
): Promise<boolean> {
  const { burstMs = 2, signal } = typeof options === "number" ? { burstMs: options } : options;
  const deadline = performance.now() + totalMs;
  while (true) {
    signal?.throwIfAborted();
    if (tryWriteLock(db, Math.min(burstMs, Math.max(0, deadline - performance.now())))) return true;
    if (performance.now() >= deadline) return false;
    await abortableSleep(5 + Math.random() * 10, signal);
  }
}

/** Waits `ms`, or rejects with the signal's reason as soon as `signal` is aborted. */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
