/**
 * A real SQLite WAL file for the micro-benchmarks, written by node:sqlite (the SQLite walsync uses).
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";

/**
 * Writes about `mib` MiB of 4000-byte random rows into a fresh WAL-mode database in `dir`, in
 * transactions of 256 rows (one commit frame every ~256 frames), with auto-checkpoint off, and
 * copies its -wal file to `dir/bench.wal` before closing (closing would checkpoint it away).
 * Returns the copy's path.
 */
export function makeWalFile(dir: string, mib: number): string {
  const path = join(dir, "wal-source.db");
  const db = new DatabaseSync(path);
  try {
    db.exec("PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0; PRAGMA synchronous=OFF");
    db.exec("CREATE TABLE b(id INTEGER PRIMARY KEY, data BLOB)");
    const batches = Math.max(1, Math.round((mib * 1024 * 1024) / (4096 * 256)));
    const insert = db.prepare(
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 256) " +
        "INSERT INTO b(data) SELECT randomblob(4000) FROM c",
    );
    for (let i = 0; i < batches; i++) insert.run();
    const copy = join(dir, "bench.wal");
    Deno.copyFileSync(`${path}-wal`, copy);
    return copy;
  } finally {
    db.close();
  }
}
