/**
 * The settings of `watch`, merged from the command line, the environment and the config file:
 * a flag (or its environment variable) wins over the file, the file over the defaults. Databases
 * given on the command line replace the file's `dbs:` list.
 * @module
 */
import { usageError } from "../errors.ts";
import { parseDuration } from "../duration.ts";
import type { Compression } from "../codec/codec.ts";
import { type EncryptionKey, readKeyFile } from "../codec/key.ts";
import {
  DEFAULT_RETENTION_CHECK_MS,
  DEFAULT_RETENTION_MS,
  parseInterval,
  parseRetention,
} from "../lifecycle/options.ts";
import type { LogFormat, LogLevel } from "../log.ts";
import type { CompactionSettings } from "../compact/background.ts";
import { compactionSettings } from "../compact/options.ts";
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
  /** Retention window (ms); null keeps everything. Per-database values are on the targets. */
  retentionMs: number | null;
  retentionCheckIntervalMs: number;
  compression: Compression;
  /** zstd level: the flag's text (checked by openStore), else the file's, else undefined (default). */
  compressionLevel?: string | number;
  /** The key file to use (flag); when absent, WALSYNC_ENCRYPTION_KEY, then the file's key. */
  encryptionKeyFile?: string;
  /** The config file's key (`encryption-key-file`), read and checked; used when no flag or env gives one. */
  encryptionKey?: EncryptionKey;
  /** Compaction: flags win over the file, the file over the defaults. */
  compaction: CompactionSettings;
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
    ...codecSettings(opts, given, config),
    compaction: compactionOf(opts, given, config),
    retentionMs: given("retention")
      ? parseRetention(opts.retention)
      : config?.retentionMs !== undefined
      ? config.retentionMs
      : DEFAULT_RETENTION_MS,
    retentionCheckIntervalMs: given("retentionCheckInterval")
      ? parseInterval(opts.retentionCheckInterval, "--retention-check-interval", DEFAULT_RETENTION_CHECK_MS)
      : config?.retentionCheckIntervalMs ?? DEFAULT_RETENTION_CHECK_MS,
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

/**
 * Compression and encryption key: `--compression` (or WALSYNC_COMPRESSION) over `compression:`,
 * default zstd; `--compression-level` (or WALSYNC_COMPRESSION_LEVEL) over `compression-level:`;
 * `--encryption-key-file`, then WALSYNC_ENCRYPTION_KEY, then `encryption-key-file:`
 * (read here, so that a bad key file is reported with the config file, line and key; exit 2).
 */
function codecSettings(
  opts: Record<string, string | undefined>,
  given: (key: string) => boolean,
  config: WatchConfig | undefined,
  env: (name: string) => string | undefined = (n) => Deno.env.get(n),
): Pick<WatchSettings, "compression" | "compressionLevel" | "encryptionKeyFile" | "encryptionKey"> {
  const compression =
    (given("compression") ? opts.compression : config?.compression ?? "zstd") as Compression;
  const compressionLevel = given("compressionLevel") ? opts.compressionLevel : config?.compressionLevel;
  if (given("encryptionKeyFile") || env("WALSYNC_ENCRYPTION_KEY") || !config?.encryptionKeyFile) {
    return { compression, compressionLevel, encryptionKeyFile: opts.encryptionKeyFile };
  }
  try {
    return { compression, compressionLevel, encryptionKey: readKeyFile(config.encryptionKeyFile) };
  } catch (e) {
    throw usageError(`${config.encryptionKeyAt}: ${(e as Error).message}`);
  }
}

/** Compaction settings: each flag given wins over the file's key, which wins over the default. */
function compactionOf(
  opts: Record<string, string | undefined>,
  given: (key: string) => boolean,
  config: WatchConfig | undefined,
): CompactionSettings {
  const flag = (key: string) => (given(key) ? opts[key] : undefined);
  const flags = compactionSettings({
    fineHistory: flag("fineHistory"),
    compactionLevels: flag("compactionLevels"),
    compactionInterval: flag("compactionInterval"),
  });
  const levels = given("compactionLevels") || config?.compactionLevelsMs === undefined
    ? flags.compactionLevelsMs
    : config.compactionLevelsMs;
  return {
    compactionLevelsMs: levels,
    fineHistoryMs: given("fineHistory") ? flags.fineHistoryMs : config?.fineHistoryMs ?? flags.fineHistoryMs,
    compactionIntervalMs: given("compactionInterval")
      ? flags.compactionIntervalMs
      : config?.compactionIntervalMs ?? levels?.[0] ?? flags.compactionIntervalMs,
  };
}
