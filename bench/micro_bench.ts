/**
 * Figure 3 micro-benchmarks (`deno bench`): walsync's SHA-256, WAL checksum and WAL scanning, as
 * walsync calls them, next to plain reads of the same file. bench/hashing.ts runs this file with
 * `deno bench --json` and compares the results with `openssl speed`; it can also be run alone:
 *
 *   deno bench -A bench/micro_bench.ts
 *
 * Data: WALSYNC_BENCH_WAL (a WAL file; default: a fresh 64 MiB one made by node:sqlite in a temp
 * dir), read from the page cache after the first iteration; 1 MiB / 16 MiB random buffers in memory.
 * @module
 */
import { createHash } from "node:crypto";
import { fileRangeSource } from "../src/storage/file_range.ts";
import { digestSource } from "../src/storage/upload.ts";
import { newSha256 } from "../src/hash.ts";
import { closeFd, openForRead, readAt, readWalHeader, scanWal, startOf, walChecksum } from "../src/wal.ts";
import { makeWalFile } from "./lib/wal_file.ts";

/** Size of walsync's upload chunks (src/storage/file_range.ts) and of its WAL scan batches. */
const CHUNK = 256 * 1024;
const SCAN_BATCH = 1 << 20;

let walPath = Deno.env.get("WALSYNC_BENCH_WAL");
if (!walPath) {
  const dir = Deno.makeTempDirSync({ prefix: "walsync-microbench-" });
  globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
  walPath = makeWalFile(dir, 64);
}
const WAL = walPath;
const walBytes = Deno.statSync(WAL).size;
const MEM = new Uint8Array(16 * 1024 * 1024);
for (let i = 0; i < MEM.length; i += 65536) crypto.getRandomValues(MEM.subarray(i, i + 65536));
const PAGE_MIB = MEM.subarray(0, 1 << 20);

/** Reads the whole WAL file in `chunk`-byte preads (what walsync's readers do underneath). */
function readFile(chunk: number): number {
  const fd = openForRead(WAL)!;
  const buffer = new Uint8Array(chunk);
  let total = 0;
  try {
    for (let n; (n = readAt(fd, total, buffer)) > 0;) total += n;
  } finally {
    closeFd(fd);
  }
  return total;
}

Deno.bench({
  name: "read WAL 1 MiB preads",
  group: "wal",
  baseline: true,
  fn: () => void readFile(SCAN_BATCH),
});
Deno.bench({ name: "read WAL 256 KiB preads", group: "wal", fn: () => void readFile(CHUNK) });
Deno.bench({
  name: "scanWal",
  group: "wal",
  fn: () => {
    const fd = openForRead(WAL)!;
    try {
      const header = readWalHeader(fd)!;
      const { end } = scanWal(fd, header, startOf(header));
      if (end.frame === 0) throw new Error("no committed frame found");
    } finally {
      closeFd(fd);
    }
  },
});
Deno.bench({
  name: "digestSource WAL (SHA-256+MD5)",
  group: "wal",
  fn: async () => void await digestSource(fileRangeSource(WAL, 0, walBytes)),
});

Deno.bench({
  name: "walChecksum 1 MiB",
  group: "memory",
  fn: () => void walChecksum(PAGE_MIB, false, [0, 0]),
});
Deno.bench({
  name: "sha256 16 MiB",
  group: "memory",
  baseline: true,
  fn: () => {
    const hash = newSha256();
    for (let i = 0; i < MEM.length; i += CHUNK) hash.update(MEM.subarray(i, i + CHUNK));
    hash.digest();
  },
});
Deno.bench({
  name: "md5 16 MiB",
  group: "memory",
  fn: () => {
    const hash = createHash("md5");
    for (let i = 0; i < MEM.length; i += CHUNK) hash.update(MEM.subarray(i, i + CHUNK));
    hash.digest();
  },
});
