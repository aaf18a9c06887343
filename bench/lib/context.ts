/**
 * What every benchmark module receives: the run's options, a scratch directory, the S3 location
 * under a fresh `bench-<id>` prefix, logging, and a place for raw details and shared results.
 * @module
 */
import type { S3Client } from "@bradenmacdonald/s3-lite-client";
import { join } from "node:path";
import type { Row } from "./report.ts";
import { removePrefix, type S3Settings } from "./s3.ts";

/** Shared state and services of one benchmark run. */
export interface BenchContext {
  /** Smaller sizes and shorter windows (for iterating). */
  quick: boolean;
  /** True if figure `n` ("1" … "9") was selected (`--only`). */
  selected(figure: string): boolean;
  /** Scratch directory of the run, removed at the end. */
  work: string;
  /** Further directories to remove at the end (e.g. on tmpfs). */
  cleanupDirs: string[];
  /** Directory for child-process logs (bench/out/logs). */
  logDir: string;
  s3: S3Settings;
  client: S3Client;
  /** The run's own key prefix in the bucket (`bench-<id>`), removed at the end. */
  prefix: string;
  /** Progress message on stderr. */
  log(message: string): void;
  /** Raw measurements, stored under the module's name in results.json. */
  details: Record<string, unknown>;
  /** Results one module leaves for another (e.g. the RSS of the busy lag run, for figure 5). */
  shared: Record<string, unknown>;
  /** Further Markdown sections (e.g. a side-by-side table) printed after the main table. */
  extraMarkdown: string[];
}

/** A benchmark module: measures some figures and returns their rows. */
export interface BenchModule {
  name: string;
  /** The figures it can produce; it runs if any of them is selected. */
  figures: string[];
  run(ctx: BenchContext): Promise<Row[]>;
}

/** `s3://bucket/<run prefix>/<sub>`: a backup URL for walsync. */
export function s3Url(ctx: BenchContext, sub: string): string {
  return `s3://${ctx.s3.bucket}/${ctx.prefix}/${sub}`;
}

/** Deletes `<run prefix>/<sub>/` (promptly after a module is done with big objects). */
export async function removeSub(ctx: BenchContext, sub: string): Promise<void> {
  try {
    await removePrefix(ctx.s3, `${ctx.prefix}/${sub}`);
  } catch (e) {
    ctx.log(`warning: could not delete s3://${ctx.s3.bucket}/${ctx.prefix}/${sub}: ${(e as Error).message}`);
  }
}

/** A fresh directory under the run's scratch directory. */
export async function scratch(ctx: BenchContext, name: string): Promise<string> {
  const dir = join(ctx.work, name);
  await Deno.mkdir(dir, { recursive: true });
  return dir;
}

/**
 * A fresh directory in RAM (/dev/shm) when available, else under the scratch directory; removed
 * at the end of the run. For data whose disk speed would only add noise (fsync-heavy set-up).
 */
export async function ramDir(ctx: BenchContext, name: string): Promise<string> {
  try {
    const dir = await Deno.makeTempDir({ dir: "/dev/shm", prefix: `walsync-bench-${name}-` });
    ctx.cleanupDirs.push(dir);
    return dir;
  } catch {
    return await scratch(ctx, name);
  }
}

/**
 * Runs `fn`, and once more if it fails. The machine is shared: another session's test clean-up
 * has been seen to send SIGINT to this suite's `watch` processes, which ends a scenario early.
 */
export async function retryOnce<T>(ctx: BenchContext, label: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    ctx.log(`${label} failed (${(e as Error).message.split("\n")[0]}); trying once more`);
    return await fn();
  }
}

/** A log file path for a child process of this run. */
export function logFile(ctx: BenchContext, name: string): string {
  return join(ctx.logDir, `${name}.log`);
}
