/**
 * What a replica holds open on its database, in the order the locks require (docs/design.md §2):
 * walsync's own descriptor of the database file, then of its `-shm` (the WAL index probe), then the
 * read pin's connection; closed in the reverse order, because closing any descriptor of a file drops
 * every POSIX lock the process holds on it, SQLite's included.
 * @module
 */
import { WalsyncError } from "../errors.ts";
import { checkWritable, DbFile } from "../sqlite/database.ts";
import { ReadPin } from "./read_pin.ts";
import { WalIndexProbe } from "./wal_index.ts";

/** A database opened for replication: checked to be SQLite in WAL mode and writable. */
export class LocalDatabase {
  private constructor(
    /** Our descriptor of the database file: opened before the connections, closed after them. */
    readonly dbFile: DbFile,
    /** Our descriptor of the -shm file: closed only after the connections (see WalIndexProbe). */
    readonly walIndex: WalIndexProbe,
    /** The read transaction that pins the WAL (no transaction yet when opened). */
    readonly pin: ReadPin,
  ) {}

  /**
   * Opens `path`: a SQLite database in WAL mode that this process may write (a checkpoint writes);
   * anything else is a clear error, with nothing left open.
   */
  static async open(path: string): Promise<LocalDatabase> {
    const { dbFile, header } = await DbFile.open(path);
    if (header.writeVersion !== 2) {
      dbFile.close();
      throw new WalsyncError(
        `${path} is not in WAL mode (walsync watch needs it); switch it once with: ` +
          `sqlite3 ${path} "PRAGMA journal_mode=WAL"`,
      );
    }
    try {
      // Checked when opening, not at the first barrier: without write access nothing can be
      // replicated, and a permanent problem must show at start (see checkWritable).
      checkWritable(path);
    } catch (e) {
      dbFile.close();
      throw e;
    }
    const walIndex = new WalIndexProbe(path);
    try {
      return new LocalDatabase(dbFile, walIndex, new ReadPin(path, () => walIndex.walEnd()));
    } catch (e) {
      walIndex.close();
      dbFile.close();
      throw e;
    }
  }

  /** Ends the read transaction and closes everything, connections first. */
  close(): void {
    this.pin.close();
    this.walIndex.close(); // only after the connections (see WalIndexProbe)
    this.dbFile.close(); // only after the connection (see DbFile)
  }
}
