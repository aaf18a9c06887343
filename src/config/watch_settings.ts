/**
 * The settings of `watch`, merged from the command line, the environment and the config file:
 * a flag (or its environment variable) wins over the file, the file over the defaults. Databases
 * given on the command line replace the file's `dbs:` list.
 * @module
 */
import { usageError } from "../errors.ts";
import { parseDuration } from "../duration.ts";
import type { LogFormat, LogLevel } from "../log.ts";
import { parseTargets } from "../watch/targets.ts";
import { type ConfiguredTarget, expandTargets } from "./globs.ts";
import { loadConfig, parseAddress, type WatchConfig } from "./load.ts";

/** Where an option's value came from (commander's `getOptionValueSource`). */
export type ValueSource = (option: string) => string | undefined;

/** Everything `watch` needs to start. */
export interface WatchSettings {
  url: string;
  endpoint?: string;
  region?: string;
  profile?: string;
  targets: ConfiguredTarget[];
  /** The config file, when one was used (its globs are polled while running). */
  config?: WatchConfig;
  syncIntervalMs: number;
  snapshotIntervalMs: number;
  checkpointFrames: number;
  leaseMs: number;
  metricsAddr?: { hostname: string; port: number };
  logFormat?: LogFormat;
  logLevel?: LogLevel;
}

/** Defaults when neither a flag nor the file sets a value. */
export const DEFAULTS = { syncIntervalMs: 1000, snapshotIntervalMs: 3_600_000 };

/** Parses a duration flag; a usage error naming the flag when it is not one. */
export function durationFlag(text: string, flag: string): number {
  const ms = parseDuration(text);
  if (ms === null) {
    throw usageError(
      `invalid ${flag} "${text}": expected a duration such as 500ms, 15s, 5m, 1h, 7d or seconds`,
    );
  }
  return ms;
}

/** Parses a positive whole number flag. */
export function countFlag(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) {
    throw usageError(`invalid ${flag} "${text}": expected a positive whole number`);
  }
  return n;
}

/**
 * Merges `opts` (commander's parsed options of `watch`; `source` tells which were given) with the
 * config file (`--config` or WALSYNC_CONFIG). Throws a usage error for anything missing or invalid,
 * before anything is contacted.
 */
export async function resolveWatchSettings(
  dbArgs: string[],
  opts: Record<string, string | undefined>,
  source: ValueSource,
  defaults: { leaseMs: number; checkpointFrames: number },
): Promise<WatchSettings> {
  const config = opts.config ? await loadConfig(opts.config) : undefined;
  const given = (key: string) => opts[key] !== undefined && source(key) !== "default";
  const pick = <T>(key: string, parse: (text: string) => T, fromFile: T | undefined, fallback: T): T =>
    given(key) ? parse(opts[key]!) : fromFile ?? fallback;

  const url = given("backup") ? opts.backup : config?.url;
  if (!url) {
    throw usageError("no backup URL: give -b URL, set WALSYNC_BACKUP_URL, or url: in the config file");
  }
  let targets: ConfiguredTarget[];
  if (dbArgs.length > 0) targets = parseTargets(dbArgs);
  else if (config) {
    targets = await expandTargets(config);
    if (config.dbs.length === 0) throw usageError(`${config.file}: dbs: the list is empty`);
  } else throw usageError("no database to watch: give DB paths or a config file (-c walsync.yml)");

  let metricsAddr: WatchSettings["metricsAddr"];
  const addr = given("metricsAddr") ? opts.metricsAddr : config?.metricsAddr;
  if (addr) {
    metricsAddr = parseAddress(addr) ?? undefined;
    if (!metricsAddr) throw usageError(`invalid --metrics-addr "${addr}": expected HOST:PORT or :PORT`);
  }
  return {
    url,
    endpoint: given("endpoint") ? opts.endpoint : config?.endpoint,
    region: config?.region,
    profile: config?.profile,
    targets,
    // Databases from the command line replace the file's list, and with it its globs.
    config: config && dbArgs.length === 0 ? config : undefined,
    syncIntervalMs: pick(
      "syncInterval",
      (t) => durationFlag(t, "--sync-interval"),
      config?.syncIntervalMs,
      DEFAULTS.syncIntervalMs,
    ),
    snapshotIntervalMs: pick(
      "snapshotInterval",
      (t) => durationFlag(t, "--snapshot-interval"),
      config?.snapshotIntervalMs,
      DEFAULTS.snapshotIntervalMs,
    ),
    checkpointFrames: pick(
      "checkpointFrames",
      (t) => countFlag(t, "--checkpoint-frames"),
      config?.checkpointFrames,
      defaults.checkpointFrames,
    ),
    leaseMs: pick(
      "leaseSeconds",
      (t) => durationFlag(t, "--lease-seconds"),
      config?.leaseMs,
      defaults.leaseMs,
    ),
    metricsAddr,
    logFormat: config?.logFormat,
    logLevel: config?.logLevel,
  };
}
