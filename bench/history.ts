/**
 * Scale over history: does anything grow with the number of stored segments? Generates a file://
 * store with 10^3, 10^4 and 2·10^5 segments of one small database (real WAL frames with valid
 * salts and checksum chain, one single-frame commit per segment, written straight into the store's
 * layout: cheap), then runs `list`, `verify --quick`, a latest restore, a point-in-time restore
 * (in the middle of the history) and a `watch` start as separate processes, reporting each one's time
 * and peak RSS.
 *
 * usage: deno run -A bench/history.ts [SIZES...]   (default: 1000 10000 200000)
 * @module
 */
import { formMetadata } from "../src/codec/codec.ts";
import { DatabaseSync } from "node:sqlite";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { segmentKey, snapshotKey } from "../src/layout.ts";
import { encodeSegmentMeta, encodeSnapshotMeta } from "../src/metadata.ts";
import { type Checksum, encodeWalHeader, WAL_FRAME_HEADER_SIZE, walChecksum } from "../src/wal.ts";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));
const NAME = "hist";
const PAGE = 512;

/** Writes an object and its metadata sidecar the way FileStore does (without fsyncs: a benchmark). */
function writeObject(dir: string, key: string, bytes: Uint8Array, metadata: Record<string, string>) {
  const path = join(dir, key);
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  // Snapshots and segments carry their codec fields: stored as they are (no compression, no key).
  const form = metadata.format === undefined ? {} : formMetadata({
    compression: "none",
    encrypted: false,
    keyId: null,
    storedLength: bytes.byteLength,
    contentSha256: sha256,
    contentLength: bytes.byteLength,
  });
  Deno.writeFileSync(path, bytes);
  Deno.writeTextFileSync(
    `${path}.meta.json`,
    JSON.stringify({ size: bytes.byteLength, metadata: { ...metadata, ...form, sha256 } }),
  );
}

/**
 * Builds the store: one snapshot, then `n` one-frame segments, each rewriting page 1 as it is; with
 * `snapshotAfter`, a second snapshot after that many segments (the same image, at that WAL position).
 */
export function generate(dir: string, n: number, t0: number, snapshotAfter?: number): { middle: number } {
  const tmp = Deno.makeTempDirSync();
  const dbPath = `${tmp}/h.db`;
  const db = new DatabaseSync(dbPath);
  db.exec(`PRAGMA page_size=${PAGE}; CREATE TABLE t(x); INSERT INTO t VALUES (1);`);
  db.close();
  const image = Deno.readFileSync(dbPath);
  Deno.removeSync(tmp, { recursive: true });
  const pageCount = image.byteLength / PAGE;
  Deno.mkdirSync(join(dir, NAME, "snapshots"), { recursive: true });
  Deno.mkdirSync(join(dir, NAME, "wal"), { recursive: true });
  writeObject(
    dir,
    snapshotKey(NAME, 1, t0),
    image,
    encodeSnapshotMeta({
      pageSize: PAGE,
      pageCount,
      position: null,
      segmentsBefore: 0,
    }),
  );
  const header = { magic: 0x377f0682, pageSize: PAGE, checkpointSeq: 0, salt1: 1234, salt2: 5678 };
  const headerBytes = encodeWalHeader(header);
  let checksum: Checksum = [
    new DataView(headerBytes.buffer).getUint32(24),
    new DataView(headerBytes.buffer).getUint32(28),
  ];
  const page1 = image.subarray(0, PAGE);
  for (let i = 0; i < n; i++) {
    const frame = new Uint8Array(WAL_FRAME_HEADER_SIZE + PAGE);
    const view = new DataView(frame.buffer);
    view.setUint32(0, 1); // page number
    view.setUint32(4, pageCount); // commit: database size after it
    view.setUint32(8, header.salt1);
    view.setUint32(12, header.salt2);
    frame.set(page1, WAL_FRAME_HEADER_SIZE);
    const before = checksum;
    checksum = walChecksum(frame.subarray(0, 8), false, checksum);
    checksum = walChecksum(frame.subarray(WAL_FRAME_HEADER_SIZE), false, checksum);
    view.setUint32(16, checksum[0]);
    view.setUint32(20, checksum[1]);
    if (snapshotAfter === i) {
      const position = { salt1: header.salt1, salt2: header.salt2, frame: i, checksum: before };
      const meta = encodeSnapshotMeta({ pageSize: PAGE, pageCount, position, segmentsBefore: i });
      writeObject(dir, snapshotKey(NAME, 1, t0 + 9 + 2 * i), image, meta);
    }
    writeObject(
      dir,
      segmentKey(NAME, 1, t0 + 10 + 2 * i),
      frame,
      encodeSegmentMeta({
        index: i,
        ...header,
        firstFrame: i + 1,
        frameCount: 1,
        before,
        after: checksum,
        commitSize: pageCount,
      }),
    );
  }
  // The state hint watch keeps (verify expects one beside WAL segments).
  const hint = new TextEncoder().encode(JSON.stringify({ generation: 1, nextSegmentIndex: n }));
  writeObject(dir, `${NAME}/state.json`, hint, {});
  return { middle: t0 + 10 + 2 * Math.floor(n / 2) };
}

/** Runs walsync under /usr/bin/time: seconds and peak RSS (MB). */
async function measure(args: string[]): Promise<{ seconds: number; mb: number; code: number }> {
  const start = performance.now();
  const out = await new Deno.Command("/usr/bin/time", {
    args: ["-f", "peak %M", Deno.execPath(), "run", "-A", "--quiet", MAIN, ...args],
    env: { NO_COLOR: "1" },
    stdout: "null",
    stderr: "piped",
  }).output();
  const seconds = (performance.now() - start) / 1000;
  const stderr = new TextDecoder().decode(out.stderr);
  const kb = Number(/peak (\d+)\s*$/.exec(stderr)?.[1]);
  if (out.code !== 0) console.error(`walsync ${args.join(" ")} exited ${out.code}: ${stderr.slice(-400)}`);
  return { seconds, mb: kb / 1024, code: out.code };
}

/**
 * Starts `watch` on a small database named like the generated one, against the generated store, and
 * stops it once it has decided how to go on (the generated chain cannot continue into this WAL, so it
 * starts a new generation after reading the history). Returns the seconds to that point and the peak
 * RSS (VmHWM) just before the stop.
 */
async function measureWatchStart(
  url: string,
  root: string,
): Promise<{ seconds: number; mb: number; code: number }> {
  const db = `${root}/${NAME}.db`;
  const sqlite = new DatabaseSync(db);
  sqlite.exec("PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS t(x); INSERT INTO t VALUES (1);");
  sqlite.close();
  const start = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, "watch", db, "-b", url],
    env: { NO_COLOR: "1" },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  let seconds = NaN;
  let mb = NaN;
  while (true) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
    if (/starting generation|continuing generation/.test(text) && Number.isNaN(seconds)) {
      seconds = (performance.now() - start) / 1000;
      const status = Deno.readTextFileSync(`/proc/${child.pid}/status`);
      mb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1]) / 1024;
      child.kill("SIGINT");
    }
  }
  const { code } = await child.status;
  if (code !== 0) console.error(`walsync watch exited ${code}: ${text.slice(-400)}`);
  return { seconds, mb, code };
}

if (import.meta.main) {
  const sizes = Deno.args.length ? Deno.args.map(Number) : [1_000, 10_000, 200_000];
  const base = Deno.statSync("/dev/shm").isDirectory ? "/dev/shm" : undefined;
  console.log("| segments | command | seconds | peak RSS (MB) |");
  console.log("|---:|---|---:|---:|");
  for (const n of sizes) {
    const root = Deno.makeTempDirSync({ dir: base, prefix: "walsync-history-" });
    const dir = `${root}/store`;
    const t0 = Date.UTC(2026, 0, 1);
    const genStart = performance.now();
    const { middle } = generate(dir, n, t0);
    console.error(`generated ${n} segments in ${((performance.now() - genStart) / 1000).toFixed(1)} s`);
    const url = `file://${dir}`;
    const out = `${root}/out.db`;
    const runs: [string, string[]][] = [
      ["list", ["list", "-b", url]],
      ["verify --quick", ["verify", "-b", url, "--quick"]],
      ["restore (latest)", ["restore", NAME, "-o", out, "-b", url, "--force"]],
      ["restore (point in time, middle)", [
        "restore",
        NAME,
        "-o",
        out,
        "-b",
        url,
        "--force",
        "--point-in-time",
        new Date(middle).toISOString(),
      ]],
    ];
    for (const [label, args] of runs) {
      const r = await measure(args);
      console.log(
        `| ${n} | ${label} | ${r.seconds.toFixed(2)} | ${r.mb.toFixed(0)}${r.code ? " (failed)" : ""} |`,
      );
    }
    const w = await measureWatchStart(url, root);
    console.log(
      `| ${n} | watch start (reads the history) | ${w.seconds.toFixed(2)} | ${w.mb.toFixed(0)}${
        w.code ? " (failed)" : ""
      } |`,
    );
    Deno.removeSync(root, { recursive: true });
  }
}
