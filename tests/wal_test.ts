/**
 * Unit tests of the WAL header encoder and parser (src/wal.ts) at every page size, against headers
 * written by SQLite itself (Python's sqlite3, a separate process).
 */
import assert from "node:assert/strict";
import { encodeWalHeader, parseWalHeader, WAL_HEADER_SIZE, walChecksum } from "../src/wal.ts";
import { cleanup, mustRun, tempDir } from "./helpers.ts";

const PAGE_SIZES = [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536];

/** Creates a WAL database with `pageSize` and one commit left in its WAL; returns the WAL's header bytes. */
async function sqliteWalHeader(dir: string, pageSize: number): Promise<Uint8Array> {
  const db = `${dir}/p${pageSize}.db`;
  await mustRun("python3", [
    "-c",
    `import sqlite3, os, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA page_size=${pageSize}")
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA wal_autocheckpoint=0")
db.execute("CREATE TABLE t(x)")
db.execute("INSERT INTO t VALUES (randomblob(3000))")
os._exit(0)  # no close: the WAL stays`,
    db,
  ]);
  const wal = await Deno.readFile(`${db}-wal`);
  return wal.subarray(0, WAL_HEADER_SIZE);
}

Deno.test("WAL header: SQLite's header at every page size parses and re-encodes byte for byte", async () => {
  const dir = await tempDir();
  for (const pageSize of PAGE_SIZES) {
    const bytes = await sqliteWalHeader(dir, pageSize);
    const header = parseWalHeader(bytes);
    assert.ok(header, `page size ${pageSize}: SQLite's header must parse`);
    assert.equal(header.pageSize, pageSize);
    assert.deepEqual(
      encodeWalHeader(header),
      bytes,
      `page size ${pageSize}: the encoder must write exactly what SQLite writes`,
    );
  }
  await cleanup(dir);
});

Deno.test("WAL header: encode then parse round-trips every page size, both byte orders", () => {
  for (const pageSize of PAGE_SIZES) {
    for (const magic of [0x377f0682, 0x377f0683]) {
      const fields = { magic, pageSize, checkpointSeq: 7, salt1: 0xfffffffe, salt2: 0x12345678 };
      const bytes = encodeWalHeader(fields);
      assert.equal(
        new DataView(bytes.buffer).getUint32(8),
        pageSize,
        "the WAL header holds the real page size",
      );
      const parsed = parseWalHeader(bytes);
      assert.ok(parsed, `page size ${pageSize}, magic ${magic.toString(16)}`);
      assert.deepEqual(
        {
          magic: parsed.magic,
          pageSize: parsed.pageSize,
          seq: parsed.checkpointSeq,
          s1: parsed.salt1,
          s2: parsed.salt2,
        },
        { magic, pageSize, seq: 7, s1: 0xfffffffe, s2: 0x12345678 },
      );
      assert.equal(parsed.bigEndian, magic === 0x377f0683);
    }
  }
});

Deno.test("WAL header: invalid page sizes and checksums are rejected", () => {
  const valid = encodeWalHeader({ magic: 0x377f0682, pageSize: 4096, checkpointSeq: 0, salt1: 1, salt2: 2 });
  // 1 (the database header's code for 65536) is not a valid WAL page size: SQLite rejects it too.
  for (const raw of [0, 1, 256, 768, 131072]) {
    const bytes = valid.slice();
    const view = new DataView(bytes.buffer);
    view.setUint32(8, raw);
    // Re-checksum so that only the page size is wrong.
    const checksum = walChecksum(bytes.subarray(0, 24), false, [0, 0]);
    view.setUint32(24, checksum[0]);
    view.setUint32(28, checksum[1]);
    assert.equal(parseWalHeader(bytes), null, `page size ${raw} must be rejected`);
  }
  const flipped = valid.slice();
  flipped[31] ^= 1;
  assert.equal(parseWalHeader(flipped), null, "a bad header checksum must be rejected");
  assert.equal(parseWalHeader(valid.subarray(0, 31)), null, "a short header must be rejected");
});
