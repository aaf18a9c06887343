/**
 * Steady state under retention and compaction (issue #10, docs/design.md §11): a writer commits twice a
 * second for 3 × the retention window while `watch` replicates with a short window, short snapshot
 * interval and short compaction levels; every SAMPLE seconds `walsync list --json` reports the objects
 * and bytes stored. After the first window both must stay flat (within about one snapshot interval's
 * worth of objects): retention and compaction remove as much as the sync loop adds.
 *
 * usage: deno run -A bench/steady.ts [--window 2m] [--s3]
 *   --s3: against RGW (`eval "$(scripts/rgw.sh env)"` first) instead of a file:// store.
 * @module
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { parseDuration } from "../src/duration.ts";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));
const WRITER = fileURLToPath(new URL("../tests/fixtures/writer.py", import.meta.url));
const SAMPLE_MS = 15_000;

interface Sample {
  seconds: number;
  objects: number;
  bytes: number;
  segments: number;
  pageSets: number;
  snapshots: number;
  /** The database file's size then: snapshots are whole images, so stored bytes follow it. */
  databaseBytes: number;
}

async function walsync(args: string[], env: Record<string, string>): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, ...args],
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (out.code !== 0) {
    throw new Error(`walsync ${args[0]} exited ${out.code}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

async function sample(
  url: string,
  env: Record<string, string>,
  seconds: number,
  dbPath: string,
): Promise<Sample> {
  const [db] = JSON.parse(await walsync(["list", "-b", url, "--json"], env));
  const generations = (db?.generations ?? []) as { snapshots: number; segments: number; pageSets?: number }[];
  const sum = (f: (g: (typeof generations)[number]) => number) => generations.reduce((n, g) => n + f(g), 0);
  return {
    seconds,
    objects: db?.objects ?? 0,
    bytes: db?.bytes ?? 0,
    segments: sum((g) => g.segments),
    pageSets: sum((g) => g.pageSets ?? 0),
    snapshots: sum((g) => g.snapshots),
    databaseBytes: (await Deno.stat(dbPath)).size,
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { window: { type: "string" }, s3: { type: "boolean" } },
  });
  const windowMs = parseDuration(values.window ?? "2m")!;
  const snapshotMs = Math.max(10_000, windowMs / 4);
  const dir = await Deno.makeTempDir({ prefix: "walsync-steady-" });
  const db = `${dir}/steady.db`;
  let url = `file://${dir}/store`;
  const env: Record<string, string> = {};
  if (values.s3) {
    const endpoint = Deno.env.get("AWS_ENDPOINT_URL_S3");
    const bucket = Deno.env.get("WALSYNC_TEST_BUCKET") ?? "walsync-test";
    if (!endpoint) throw new Error('--s3: run `eval "$(scripts/rgw.sh env)"` first');
    url = `s3://${bucket}/bench-steady-${Date.now()}`;
  }
  await new Deno.Command("python3", { args: [WRITER, "fill", db, "100"] }).output();
  const seconds = (3 * windowMs) / 1000;
  const flags = [
    "--sync-interval",
    "1",
    "--snapshot-interval",
    `${snapshotMs / 1000}`,
    "--retention",
    `${windowMs / 1000}`,
    "--retention-check-interval",
    "10",
    "--fine-history",
    `${Math.round(windowMs / 4000)}`,
    "--compaction-levels",
    "5s,15s",
    "--compaction-interval",
    "5",
  ];
  console.error(
    `steady state: window ${windowMs / 1000} s, snapshots every ${
      snapshotMs / 1000
    } s, ${seconds} s of 2 commits/s, ${url}`,
  );
  const watch = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, "watch", db, "-b", url, ...flags],
    env: { NO_COLOR: "1" },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(watch.stderr).text();
  const writing = new Deno.Command("python3", {
    args: [WRITER, "steady", db, String(seconds), "2"],
    stdout: "null",
  }).output();
  const start = Date.now();
  const samples: Sample[] = [];
  while (Date.now() - start < seconds * 1000) {
    await new Promise((r) => setTimeout(r, SAMPLE_MS));
    samples.push(await sample(url, env, Math.round((Date.now() - start) / 1000), db));
    const s = samples.at(-1)!;
    console.error(`${s.seconds} s: ${s.objects} objects, ${s.bytes} bytes`);
  }
  await writing;
  watch.kill("SIGINT");
  const status = await watch.status;
  const log = await stderr;
  console.log(
    "| elapsed (s) | objects | bytes | database bytes | bytes per database byte | snapshots | segments | page sets |",
  );
  console.log("|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const s of samples) {
    const ratio = (s.bytes / s.databaseBytes).toFixed(2);
    console.log(
      `| ${s.seconds} | ${s.objects} | ${s.bytes} | ${s.databaseBytes} | ${ratio} | ${s.snapshots} | ${s.segments} | ${s.pageSets} |`,
    );
  }
  const ratios = samples.filter((s) => s.seconds * 1000 >= windowMs + snapshotMs).map((s) =>
    s.bytes / s.databaseBytes
  );
  const after = samples.filter((s) => s.seconds * 1000 >= windowMs + snapshotMs);
  const spread = (f: (s: Sample) => number) => Math.max(...after.map(f)) - Math.min(...after.map(f));
  const perSnapshotInterval = (2 * snapshotMs) / 1000; // segments one snapshot interval adds at 2 commits/s (at most)
  console.log(
    `\nafter the first window + one snapshot interval (${after.length} samples): objects ${
      Math.min(...after.map((s) => s.objects))
    }–${Math.max(...after.map((s) => s.objects))} (spread ${
      spread((s) => s.objects)
    }; one snapshot interval adds up to ${perSnapshotInterval} segments), bytes ${
      Math.min(...after.map((s) => s.bytes))
    }–${Math.max(...after.map((s) => s.bytes))}; first half vs second half mean objects ${
      mean(after.slice(0, after.length >> 1).map((s) => s.objects)).toFixed(0)
    } / ${
      mean(after.slice(after.length >> 1).map((s) => s.objects)).toFixed(0)
    }; stored bytes per database byte ${Math.min(...ratios).toFixed(2)}–${
      Math.max(...ratios).toFixed(2)
    } (the writer only inserts: the database, and every snapshot with it, grows)`,
  );
  console.log(`watch exited ${status.code}; ${(log.match(/ERROR/g) ?? []).length} error line(s)`);
  await Deno.remove(dir, { recursive: true });
}

function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
}
