/**
 * A look at SQLite's WAL index (the `-shm` file), as documented in the file format
 * (https://www.sqlite.org/walformat.html#the_wal_index_file_format): the header's `mxFrame` (last
 * committed frame, offset 16) and the checkpoint information's `nBackfill` (frames already copied
 * into the database, offset 96), both in the host's byte order.
 *
 * SQLite's read locks are POSIX locks on the -shm file, and closing *any* descriptor of a file drops
 * every POSIX lock the process holds on it: a probe that opened and closed the -shm each time
 * would silently release walsync's read transaction. So the descriptor is opened once and closed
 * only after every connection to the database is closed (like DbFile for the database file).
 * @module
 */
import { closeFd, openForRead, readAt } from "../wal.ts";

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The last committed frame of the WAL cycle the WAL index describes. */
export interface WalIndexEnd {
  salt1: number;
  salt2: number;
  /** Frames committed in this cycle (0: nothing yet). */
  mxFrame: number;
}

/** A long-lived read-only descriptor of a database's -shm file. */
export class WalIndexProbe {
  #fd: number | null = null;

  constructor(readonly dbPath: string) {}

  /**
   * Whether every committed WAL frame has been copied into the database (nBackfill == mxFrame), so
   * that a PASSIVE checkpoint would have nothing to write and nothing to fsync. False when it
   * cannot tell (no -shm yet, short read). Under the write lock, mxFrame cannot change meanwhile.
   */
  fullyBackfilled(): boolean {
    this.#fd ??= openForRead(`${this.dbPath}-shm`);
    if (this.#fd === null) return false;
    const bytes = new Uint8Array(100);
    if (readAt(this.#fd, 0, bytes) < bytes.byteLength) return false;
    const view = new DataView(bytes.buffer);
    return view.getUint32(16, LITTLE_ENDIAN_HOST) === view.getUint32(96, LITTLE_ENDIAN_HOST);
  }

  /**
   * The WAL's committed end as the WAL index says (header `mxFrame` and salts, offsets 16 and 32;
   * the salts are the WAL header's bytes, big-endian). SQLite writes the header twice (offsets 0
   * and 48); a read that catches it mid-update (the copies differ) is tried again. Null when it
   * cannot tell (no -shm yet, short read, or the header kept changing).
   */
  walEnd(): WalIndexEnd | null {
    this.#fd ??= openForRead(`${this.dbPath}-shm`);
    if (this.#fd === null) return null;
    const bytes = new Uint8Array(96);
    for (let attempt = 0; attempt < 5; attempt++) {
      if (readAt(this.#fd, 0, bytes) < bytes.byteLength) return null;
      const first = bytes.subarray(0, 48);
      const second = bytes.subarray(48, 96);
      if (!first.every((b, i) => b === second[i])) continue;
      const view = new DataView(bytes.buffer);
      return {
        salt1: view.getUint32(32, false),
        salt2: view.getUint32(36, false),
        mxFrame: view.getUint32(16, LITTLE_ENDIAN_HOST),
      };
    }
    return null;
  }

  /** Closes the descriptor: only once every SQLite connection to the database is closed. */
  close(): void {
    if (this.#fd !== null) closeFd(this.#fd);
    this.#fd = null;
  }
}
