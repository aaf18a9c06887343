/**
 * The 100-byte SQLite database header: just the fields walsync needs.
 * See https://www.sqlite.org/fileformat2.html#the_database_header
 * @module
 */

/** The 16-byte magic string at the start of every SQLite database file. */
export const SQLITE_MAGIC = "SQLite format 3\0";

/** Fields of the database header that walsync uses. */
export interface DbHeader {
  pageSize: number;
  /** 1 = rollback journal, 2 = WAL (bytes 18 and 19). */
  writeVersion: number;
  readVersion: number;
  changeCounter: number;
  /** The in-header database size in pages, or null when it is not valid (older writers). */
  pageCount: number | null;
}

/** Parses the first 100 bytes of a database file; returns null if they are not a SQLite header. */
export function parseDbHeader(bytes: Uint8Array): DbHeader | null {
  if (bytes.byteLength < 100) return null;
  if (new TextDecoder().decode(bytes.subarray(0, 16)) !== SQLITE_MAGIC) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, 100);
  const rawPageSize = view.getUint16(16);
  const pageSize = rawPageSize === 1 ? 65536 : rawPageSize;
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) return null;
  const changeCounter = view.getUint32(24);
  const inHeaderSize = view.getUint32(28);
  const versionValidFor = view.getUint32(92);
  return {
    pageSize,
    writeVersion: bytes[18],
    readVersion: bytes[19],
    changeCounter,
    pageCount: inHeaderSize > 0 && versionValidFor === changeCounter ? inHeaderSize : null,
  };
}
