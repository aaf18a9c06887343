/**
 * The walsync benchmark suite (issue #5): runs the benchmark modules, prints one Markdown table,
 * writes bench/out/results.json and, with --write-results, bench/RESULTS.md.
 *
 * usage (through bench/run.sh, which starts RGW and exports its settings; `deno task bench`):
 *   deno run -A bench/main.ts [--quick] [--only N[,N…]] [--write-results] [--out FILE]
 *
 * --quick           smaller sizes and shorter windows (~5 min instead of ~13)
 * --only 1,4        only these figures (1 … 7 as numbered in issue #5; 8: side by side with
 *                   Litestream, issue #9: 1/10/100/1000 idle and 1/10/100 busy databases, or
 *                   1/10/100 idle and 1/10 busy with --quick; 9: latest restore side by side with
 *                   Litestream and plain parallel GETs, issue #8)
 * --write-results   also rewrite the generated part of bench/RESULTS.md (hand-written notes after
 *                   its end marker are kept)
 *
 * Everything the run creates is removed at the end, also on failure or Ctrl-C: its scratch
 * directory and its `bench-<id>/` prefix in the bucket. Child-process logs stay in bench/out/logs.
 * @module
 */
import { parseArgs } from "node:util";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { BenchContext, BenchModule } from "./lib/context.ts";
import { REPO, run, stopAllChildren } from "./lib/proc.ts";
import {
  KEEP_MARKER,
  type Machine,
  markdownTable,
  type Results,
  resultsMarkdown,
  type Row,
} from "./lib/report.ts";
import { removePrefix, s3Client, s3SettingsFromEnv } from "./lib/s3.ts";
import { hashingModule } from "./hashing.ts";
import { throughputModule } from "./throughput.ts";
import { segmentsModule } from "./segments.ts";
import { costModule } from "./cost.ts";
import { lagModule } from "./lag.ts";
import { memoryModule } from "./memory.ts";
import { litestreamModule } from "./litestream.ts";
import { restoreModule } from "./restore.ts";

/** In running order: quick, independent figures first; the long-running watch scenarios last. */
const MODULES: BenchModule[] = [
  hashingModule,
  throughputModule,
  segmentsModule,
  costModule,
  lagModule,
  memoryModule,
  litestreamModule,
  restoreModule,
];
const RESULTS_MD = fileURLToPath(new URL("./RESULTS.md", import.meta.url));

function parseOptions() {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      quick: { type: "boolean", default: false },
      only: { type: "string", multiple: true },
      "write-results": { type: "boolean", default: false },
      out: { type: "string", default: join(REPO, "bench/out/results.json") },
    },
  });
  const only = values.only?.flatMap((v) => v.split(",")).map((v) => v.trim()).filter(Boolean) ?? null;
  for (const f of only ?? []) {
    if (!/^[1-9]$/.test(f)) throw new Error(`--only takes figure numbers 1 to 9, not "${f}"`);
  }
  return { quick: values.quick, only, writeResults: values["write-results"], out: resolve(values.out) };
}

async function machine(): Promise<Machine> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo");
  const free = await run("free", ["-h"]).catch(() => "");
  const memLine = free.split("\n").find((l) => l.startsWith("Mem:"))?.trim().split(/\s+/) ?? [];
  return {
    nproc: Number((await run("nproc", [])).trim()),
    cpu: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? "unknown",
    memory: memLine.length >= 7
      ? `total ${memLine[1]}, used ${memLine[2]}, available ${memLine[6]}`
      : "unknown",
    deno: Deno.version.deno,
    kernel: Deno.osRelease(),
    revision: await revision(),
    date: new Date().toISOString(),
  };
}

/** The measured walsync: WALSYNC_BENCH_REVISION, else `git describe --always --dirty` of the checkout. */
async function revision(): Promise<string> {
  const given = Deno.env.get("WALSYNC_BENCH_REVISION");
  if (given) return given;
  return (await run("git", ["-C", REPO, "describe", "--always", "--dirty"]).catch(() => "unknown")).trim();
}

function log(message: string): void {
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);
}

async function main(): Promise<number> {
  const options = parseOptions();
  const s3 = s3SettingsFromEnv();
  const prefix = `bench-${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
  const work = await Deno.makeTempDir({ prefix: "walsync-bench-" });
  const logDir = join(dirname(options.out), "logs");
  await Deno.remove(logDir, { recursive: true }).catch(() => {});
  await Deno.mkdir(logDir, { recursive: true });

  const ctx: BenchContext = {
    quick: options.quick,
    selected: (f) => options.only === null || options.only.includes(f),
    work,
    cleanupDirs: [],
    logDir,
    s3,
    client: s3Client(s3),
    prefix,
    log,
    details: {},
    shared: {},
    extraMarkdown: [],
  };
  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    await stopAllChildren();
    for (const dir of [work, ...ctx.cleanupDirs]) await Deno.remove(dir, { recursive: true }).catch(() => {});
    await removePrefix(s3, prefix).catch((e) =>
      log(`warning: S3 cleanup of ${prefix}/ failed: ${e.message}`)
    );
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, async () => {
      log(`${signal}: stopping children and cleaning up ...`);
      await cleanup();
      Deno.exit(130);
    });
  }

  const results: Results = {
    machine: await machine(),
    options: { quick: options.quick, only: options.only },
    durations: {},
    rows: [],
    details: ctx.details,
    failures: [],
    extraMarkdown: ctx.extraMarkdown,
  };
  log(`S3 ${s3.endpoint} bucket ${s3.bucket}, prefix ${prefix}/; scratch ${work}; logs ${logDir}`);
  try {
    for (const module of MODULES) {
      if (!module.figures.some((f) => ctx.selected(f))) continue;
      const started = performance.now();
      log(`== ${module.name} (figure ${module.figures.join(", ")}) ==`);
      try {
        const rows: Row[] = await module.run(ctx);
        results.rows.push(...rows.filter((r) => ctx.selected(r.figure)));
      } catch (e) {
        const error = (e as Error).stack ?? String(e);
        log(`${module.name} FAILED: ${error}`);
        results.failures.push({ module: module.name, error: (e as Error).message });
        await stopAllChildren();
      }
      results.durations[module.name] = (performance.now() - started) / 1000;
      log(`${module.name}: ${results.durations[module.name].toFixed(0)} s`);
    }
  } finally {
    await cleanup();
  }

  console.log(markdownTable(results.rows));
  for (const section of results.extraMarkdown) console.log(`\n${section}`);
  for (const f of results.failures) console.log(`\nFAILED: ${f.module}: ${f.error}`);
  await Deno.mkdir(dirname(options.out), { recursive: true });
  await Deno.writeTextFile(options.out, JSON.stringify(results, null, 2) + "\n");
  log(`wrote ${options.out}`);
  if (options.writeResults) {
    const previous = await Deno.readTextFile(RESULTS_MD).catch(() => "");
    const at = previous.indexOf(KEEP_MARKER);
    const kept = at >= 0 ? previous.slice(at + KEEP_MARKER.length) : "\n";
    const command = `deno task bench${Deno.args.length ? " " + Deno.args.join(" ") : ""}`;
    await Deno.writeTextFile(RESULTS_MD, resultsMarkdown(results, kept, command));
    await run(Deno.execPath(), ["fmt", "--quiet", RESULTS_MD]); // keep `deno fmt --check` clean
    log(`wrote ${RESULTS_MD}`);
  }
  return results.failures.length ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main());
