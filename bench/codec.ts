/**
 * Benchmark of the object codec (issue 8): what compression and encryption cost and save.
 *
 * usage: deno run -A bench/codec.ts [--quick] [--out FILE]
 *   (S3 figures too when WALSYNC_TEST_S3_ENDPOINT and the AWS_* credentials are set, as under
 *   bench/run.sh or scripts/test.sh; its objects go under a fresh bench-codec-<id>/ prefix, removed
 *   at the end)
 *
 * 1. Stored bytes per WAL byte: `walsync watch` ships the segments of an ordinary application
 *    (tests/fixtures/app_writer.py, an order book with text, JSON and two indexes) written by a
 *    separate process; the ratio is the sum of the stored sizes over the sum of their content
 *    (`content-length`), for each codec. Goal: <= 0.5 with the default (zstd).
 * 2. Snapshot and restore of a larger database of the same application: stored size, time and
 *    peak RSS per codec, on file:// (and S3), with the plain codec as reference.
 * Prints a Markdown table; writes raw numbers to bench/out/codec.json.
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { REPO, run, type Timed, timedWalsync, walsyncArgs } from "./lib/proc.ts";

const APP_WRITER = join(REPO, "tests/fixtures/app_writer.py");
const KEY = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));

interface Codec {
  name: string;
  args: string[];
  env: Record<string, string>;
}
const CODECS: Codec[] = [
  { name: "none", args: ["--compression", "none"], env: {} },
  { name: "zstd (default)", args: [], env: {} },
  { name: "zstd + AES-256-GCM", args: [], env: { WALSYNC_ENCRYPTION_KEY: KEY } },
  { name: "AES-256-GCM only", args: ["--compression", "none"], env: { WALSYNC_ENCRYPTION_KEY: KEY } },
];

function log(message: string): void {
  console.error(`bench/codec: ${message}`);
}

async function sidecars(dir: string): Promise<{ key: string; stored: number; content: number }[]> {
  const out: { key: string; stored: number; content: number }[] = [];
  const walk = async (path: string) => {
    for await (const e of Deno.readDir(path)) {
      if (e.isDirectory) await walk(`${path}/${e.name}`);
      else if (e.name.endsWith(".meta.json")) {
        const { size, metadata } = JSON.parse(await Deno.readTextFile(`${path}/${e.name}`));
        if (metadata["content-length"]) {
          out.push({ key: `${path}/${e.name}`, stored: size, content: Number(metadata["content-length"]) });
        }
      }
    }
  };
  await walk(dir);
  return out;
}

/** Figure 1: watch ships the application's segments; stored/WAL byte ratio. */
async function segmentRatio(work: string, codec: Codec, transactions: number) {
  const dir = await Deno.makeTempDir({ dir: work });
  const db = `${dir}/orders.db`;
  await run("python3", [APP_WRITER, db, "20", "bench"]);
  const child = new Deno.Command(Deno.execPath(), {
    args: walsyncArgs(["watch", db, "-b", `file://${dir}/backups`, "--sync-interval", "0.2", ...codec.args]),
    env: { NO_COLOR: "1", ...codec.env },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!/watching \d+ database/.test(text)) {
    const { done, value } = await stderr.read();
    if (done) throw new Error(`watch did not start: ${text}`);
    text += value;
  }
  await run("python3", [APP_WRITER, db, String(transactions), "bench", "5"]);
  child.kill("SIGTERM");
  (async () => {
    while (!(await stderr.read()).done) { /* drain */ }
  })();
  const status = await child.status;
  if (status.code !== 0) throw new Error(`watch exited ${status.code}`);
  const segments = (await sidecars(`${dir}/backups`)).filter((o) => o.key.includes("/wal/"));
  const stored = segments.reduce((n, o) => n + o.stored, 0);
  const wal = segments.reduce((n, o) => n + o.content, 0);
  await Deno.remove(dir, { recursive: true });
  return { segments: segments.length, walBytes: wal, storedBytes: stored, ratio: stored / wal };
}

/** Figure 2: snapshot and restore of `db` to `url` with `codec`. */
async function snapshotRestore(
  db: string,
  url: string,
  codec: Codec,
  out: string,
  env: Record<string, string>,
) {
  const snap = await timedWalsync(["snapshot", db, "-b", url, "--name", "big", "--json", ...codec.args], {
    ...env,
    ...codec.env,
  });
  if (!snap.ok) throw new Error(`snapshot failed: ${snap.error}`);
  const { size, databaseSize } = JSON.parse(snap.stdout);
  const restore: Timed = await timedWalsync(["restore", "big", "-o", out, "-b", url, "--force"], {
    ...env,
    ...codec.env,
  });
  if (!restore.ok) throw new Error(`restore failed: ${restore.error}`);
  await run("cmp", [db, out]);
  await Deno.remove(out);
  return {
    databaseBytes: databaseSize,
    storedBytes: size,
    ratio: size / databaseSize,
    snapshot: { seconds: snap.seconds, peakRssMB: snap.peakRssMB, MBps: databaseSize / 1e6 / snap.seconds },
    restore: {
      seconds: restore.seconds,
      peakRssMB: restore.peakRssMB,
      MBps: databaseSize / 1e6 / restore.seconds,
    },
  };
}

async function main() {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      quick: { type: "boolean", default: false },
      out: { type: "string", default: join(REPO, "bench/out/codec.json") },
    },
  });
  const quick = values.quick!;
  const work = await Deno.makeTempDir({ prefix: "walsync-bench-codec-" });
  const s3Endpoint = Deno.env.get("WALSYNC_TEST_S3_ENDPOINT");
  const bucket = Deno.env.get("WALSYNC_TEST_BUCKET") ?? "walsync-test";
  const prefix = `bench-codec-${crypto.randomUUID().slice(0, 8)}`;
  const s3Env: Record<string, string> = s3Endpoint ? { AWS_ENDPOINT_URL_S3: s3Endpoint } : {};
  const results: Record<string, unknown> = { quick };
  const lines = [
    "| codec | segments: stored / WAL bytes | snapshot: stored / database | file:// snapshot | file:// restore | S3 snapshot | S3 restore |",
    "|---|---|---|---|---|---|---|",
  ];
  try {
    const db = `${work}/big.db`;
    const txns = quick ? 60 : 200; // ~20 / ~65 MB
    log(`building the application database (${txns} transactions of up to 2000 rows)`);
    await run("python3", [APP_WRITER, db, String(txns), "bench", "0", "2000"]);
    await run("sqlite3", [db, "PRAGMA wal_checkpoint(TRUNCATE)"]);
    const fmt = (r: { seconds: number; peakRssMB: number; MBps: number }) =>
      `${r.MBps.toFixed(0)} MB/s, ${r.seconds.toFixed(2)} s, ${r.peakRssMB.toFixed(0)} MB RSS`;
    for (const codec of CODECS) {
      log(`${codec.name}: segments under watch`);
      const segments = await segmentRatio(work, codec, quick ? 100 : 300);
      log(`${codec.name}: snapshot and restore (file://)`);
      const file = await snapshotRestore(
        db,
        `file://${work}/store-${CODECS.indexOf(codec)}`,
        codec,
        `${work}/out.db`,
        {},
      );
      let s3 = null;
      if (s3Endpoint) {
        log(`${codec.name}: snapshot and restore (S3)`);
        s3 = await snapshotRestore(
          db,
          `s3://${bucket}/${prefix}/${CODECS.indexOf(codec)}`,
          codec,
          `${work}/out.db`,
          s3Env,
        );
      }
      results[codec.name] = { segments, file, s3 };
      lines.push(
        `| ${codec.name} | ${
          segments.ratio.toFixed(3)
        } (${segments.segments} segments, ${segments.walBytes} WAL bytes) | ` +
          `${file.ratio.toFixed(3)} of ${(file.databaseBytes / 1e6).toFixed(1)} MB | ${
            fmt(file.snapshot)
          } | ` +
          `${fmt(file.restore)} | ${s3 ? fmt(s3.snapshot) : "-"} | ${s3 ? fmt(s3.restore) : "-"} |`,
      );
    }
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
    if (s3Endpoint) {
      await run("aws", [
        "--endpoint-url",
        s3Endpoint,
        "s3",
        "rm",
        "--recursive",
        "--quiet",
        `s3://${bucket}/${prefix}/`,
      ])
        .catch((e) => log(`could not remove s3://${bucket}/${prefix}/: ${e.message}`));
    }
  }
  await Deno.mkdir(join(values.out!, ".."), { recursive: true });
  await Deno.writeTextFile(values.out!, JSON.stringify(results, null, 2) + "\n");
  console.log(lines.join("\n"));
}

if (import.meta.main) await main();
