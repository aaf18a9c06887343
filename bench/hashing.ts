/**
 * Figure 3: SHA-256 and WAL-parsing speed inside walsync vs the machine's limits.
 *
 * Runs bench/micro_bench.ts with `deno bench --json` on a real WAL written by node:sqlite (64 MiB;
 * 16 MiB with --quick), and `openssl speed -evp sha256|md5` with the same 256 KiB blocks walsync
 * hashes. walsync computes SHA-256 *and* MD5 (for Content-MD5) over every upload, so MD5 is shown
 * too. References: openssl for the hashes; reading the same file from the page cache for the WAL
 * scan and checksum.
 * @module
 */
import { fileURLToPath } from "node:url";
import { type BenchContext, type BenchModule, scratch } from "./lib/context.ts";
import { run } from "./lib/proc.ts";
import { ratio, type Row } from "./lib/report.ts";
import { makeWalFile } from "./lib/wal_file.ts";

const MICRO = fileURLToPath(new URL("./micro_bench.ts", import.meta.url));
const BLOCK = 256 * 1024;

/** Average nanoseconds per iteration of each bench, by name, from `deno bench --json`. */
async function denoBench(walPath: string): Promise<Map<string, number>> {
  const out = await run(Deno.execPath(), ["bench", "-A", "--json", "--frozen", MICRO], {
    env: { WALSYNC_BENCH_WAL: walPath },
  });
  const json = JSON.parse(out) as { benches: { name: string; results: { ok?: { avg: number } }[] }[] };
  const result = new Map<string, number>();
  for (const b of json.benches) {
    const avg = b.results[0]?.ok?.avg;
    if (avg === undefined) throw new Error(`deno bench: "${b.name}" failed`);
    result.set(b.name, avg);
  }
  return result;
}

/** `openssl speed -evp ALG` with 256 KiB blocks, in MB/s. */
async function opensslSpeed(algorithm: string, seconds: number): Promise<number> {
  const out = await run("openssl", [
    "speed",
    "-evp",
    algorithm,
    "-seconds",
    String(seconds),
    "-bytes",
    String(BLOCK),
  ]);
  // Last line: "<alg>   1669802.67k" (thousands of bytes per second).
  const m = /([\d.]+)k\s*$/.exec(out.trim());
  if (!m) throw new Error(`cannot parse openssl speed output: ${out}`);
  return Number(m[1]) / 1000;
}

async function measure(ctx: BenchContext): Promise<Row[]> {
  const walMiB = ctx.quick ? 16 : 64;
  const dir = await scratch(ctx, "hashing");
  const wal = makeWalFile(dir, walMiB);
  const walBytes = (await Deno.stat(wal)).size;
  ctx.log(`hashing: deno bench on a ${walMiB} MiB WAL, openssl speed ...`);
  const ns = await denoBench(wal);
  const seconds = ctx.quick ? 1 : 3;
  const sslSha = await opensslSpeed("sha256", seconds);
  const sslMd5 = await opensslSpeed("md5", seconds);
  await Deno.remove(dir, { recursive: true });

  const mbps = (name: string, bytes: number) => {
    const t = ns.get(name);
    if (t === undefined) throw new Error(`deno bench gave no result for "${name}"`);
    return bytes / t * 1000; // bytes per ns -> MB/s
  };
  const mem = 16 * 1024 * 1024;
  const sha = mbps("sha256 16 MiB", mem);
  const md5 = mbps("md5 16 MiB", mem);
  const checksum = mbps("walChecksum 1 MiB", 1 << 20);
  const read1m = mbps("read WAL 1 MiB preads", walBytes);
  const read256k = mbps("read WAL 256 KiB preads", walBytes);
  const scan = mbps("scanWal", walBytes);
  const digest = mbps("digestSource WAL (SHA-256+MD5)", walBytes);
  const readBest = Math.max(read1m, read256k);
  const readWhat = `read of the same WAL from page cache (best of 1 MiB / 256 KiB preads)`;
  const digestLimit = 1 / (1 / read256k + 1 / sslSha + 1 / sslMd5);
  ctx.details.hashing = {
    walBytes,
    nsPerIteration: Object.fromEntries(ns),
    opensslMBps: { sha256: sslSha, md5: sslMd5 },
  };

  const row = (what: string, value: number, refWhat: string, ref: number, note?: string): Row => ({
    figure: "3",
    what,
    value,
    unit: "MB/s",
    reference: { what: refWhat, value: ref, unit: "MB/s" },
    ratio: ratio(value, ref),
    note,
  });
  return [
    row("SHA-256, node:crypto (256 KiB updates)", sha, "openssl speed -evp sha256 (256 KiB blocks)", sslSha),
    row(
      "MD5, node:crypto (walsync's Content-MD5)",
      md5,
      "openssl speed -evp md5",
      sslMd5,
      "walsync hashes every upload with SHA-256 and MD5 in one pass, then SHA-256 again while " +
        "sending: MD5 is the slowest of the three.",
    ),
    row(
      "upload digest pass (digestSource: read + SHA-256 + MD5)",
      digest,
      "read + openssl sha256 + md5",
      digestLimit,
    ),
    row("walChecksum (in memory)", checksum, readWhat, readBest),
    row("scanWal (read + salts + checksum chain)", scan, readWhat, readBest),
  ];
}

/** Figure 3: hashing and WAL parsing speed. */
export const hashingModule: BenchModule = { name: "hashing", figures: ["3"], run: measure };
