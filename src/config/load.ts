/**
 * The `watch` config file (`walsync watch -c walsync.yml`, or WALSYNC_CONFIG): YAML (JSON is YAML
 * too), shaped like Litestream's. Every value is checked before anything runs: an unknown key, a
 * wrong type, a duplicate name or an unreadable path is a usage error (exit 2) that names the file,
 * the line and the key, e.g. `walsync.yml:7: dbs[1].nmae: unknown key (known: path, name, ...)`.
 * @module
 */
import { dirname, resolve } from "node:path";
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument, type YAMLMap } from "yaml";
import { usageError, type WalsyncError } from "../errors.ts";
import { parseDuration } from "../duration.ts";
import { validateName } from "../layout.ts";
import { parseBackupUrl } from "../url.ts";
import { parseRetention } from "../lifecycle/options.ts";
import { ZSTD_LEVELS } from "../codec/zstd.ts";
import { parseLevels } from "../compact/levels.ts";
import { expandVariables, ExpansionError } from "./env.ts";
import { globBase, isGlob } from "./globs.ts";

/** One entry of `dbs:`. */
export interface DatabaseConfig {
  /** Absolute path, or an absolute glob pattern (`/srv/tenants/*.db`). */
  path: string;
  /** Explicit name (not allowed with a glob). */
  name?: string;
  glob: boolean;
  /** `file:line` of the entry, for messages. */
  where: string;
  /** Per-database overrides. */
  snapshotIntervalMs?: number;
  checkpointFrames?: number;
  /** Retention window of this database (ms); null keeps everything (docs/design.md §12). */
  retentionMs?: number | null;
}

/** The parsed file. Absent keys stay undefined: flags and defaults fill them in. */
export interface WatchConfig {
  file: string;
  url?: string;
  endpoint?: string;
  region?: string;
  profile?: string;
  syncIntervalMs?: number;
  snapshotIntervalMs?: number;
  checkpointFrames?: number;
  leaseMs?: number;
  /** How often globs are re-expanded to pick up new databases. */
  scanIntervalMs?: number;
  metricsAddr?: string;
  logFormat?: "human" | "json";
  logLevel?: "debug" | "info" | "warn" | "error";
  /** Retention window (ms); null keeps everything. */
  retentionMs?: number | null;
  retentionCheckIntervalMs?: number;
  /** Compression of new snapshots and segments. */
  compression?: "zstd" | "none";
  /** zstd level (1 to 19). */
  compressionLevel?: number;
  /** Absolute path of the encryption key file (relative paths are relative to the config file). */
  encryptionKeyFile?: string;
  /** Where `encryption-key-file` is given, for messages about the key file. */
  encryptionKeyAt?: string;
  /** Compaction (docs/design.md §11.1): segments kept this long (ms). */
  fineHistoryMs?: number;
  /** Level windows (ms), finest first; null: compaction off. */
  compactionLevelsMs?: number[] | null;
  /** Time between two compaction passes (ms). */
  compactionIntervalMs?: number;
  dbs: DatabaseConfig[];
}

type Kind =
  | "string"
  | "path"
  | "duration"
  | "retention"
  | "count"
  | "level"
  | "url"
  | "address"
  | "levels"
  | { oneOf: string[] };

/** Top-level keys: config key → field and type. */
const GLOBAL_KEYS: Record<string, [keyof WatchConfig, Kind]> = {
  "url": ["url", "url"],
  "endpoint": ["endpoint", "string"],
  "region": ["region", "string"],
  "profile": ["profile", "string"],
  "sync-interval": ["syncIntervalMs", "duration"],
  "snapshot-interval": ["snapshotIntervalMs", "duration"],
  "checkpoint-frames": ["checkpointFrames", "count"],
  "lease": ["leaseMs", "duration"],
  "scan-interval": ["scanIntervalMs", "duration"],
  "metrics-addr": ["metricsAddr", "address"],
  "log-format": ["logFormat", { oneOf: ["human", "json"] }],
  "log-level": ["logLevel", { oneOf: ["debug", "info", "warn", "error"] }],
  "retention": ["retentionMs", "retention"],
  "retention-check-interval": ["retentionCheckIntervalMs", "duration"],
  "compression": ["compression", { oneOf: ["zstd", "none"] }],
  "compression-level": ["compressionLevel", "level"],
  "encryption-key-file": ["encryptionKeyFile", "path"],
  "fine-history": ["fineHistoryMs", "duration"],
  "compaction-levels": ["compactionLevelsMs", "levels"],
  "compaction-interval": ["compactionIntervalMs", "duration"],
};

/** Keys of one `dbs:` entry. */
const DB_KEYS: Record<string, [keyof DatabaseConfig, Kind]> = {
  "path": ["path", "string"],
  "name": ["name", "string"],
  "snapshot-interval": ["snapshotIntervalMs", "duration"],
  "checkpoint-frames": ["checkpointFrames", "count"],
  "retention": ["retentionMs", "retention"],
};

/** Where a value is, for messages. */
interface Position {
  file: string;
  line: number;
  key: string;
}

function configError(at: Position, message: string): WalsyncError {
  return usageError(`${at.file}:${at.line}: ${at.key}: ${message}`);
}

/**
 * Reads and checks the config file `file`; `${VAR}` references are expanded from `env`. Relative
 * database paths are relative to the file's directory. Throws a usage error (exit 2) naming the
 * file, line and key for anything wrong, including a database path that cannot be read.
 */
export async function loadConfig(
  file: string,
  env: (name: string) => string | undefined = (n) => Deno.env.get(n),
): Promise<WatchConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound ? "no such file" : (e as Error).message;
    throw usageError(`cannot read config file ${file}: ${why}`);
  }
  const config = parseConfig(text, file, env);
  for (const db of config.dbs) await checkReadable(db);
  return config;
}

/** Parses and checks config `text` (named `file` in messages) without touching the file system. */
export function parseConfig(
  text: string,
  file: string,
  env: (name: string) => string | undefined = (n) => Deno.env.get(n),
): WatchConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: false, prettyErrors: false });
  const lineOf = (node: Node | null | undefined) => node?.range ? lines.linePos(node.range[0]).line : 1;
  if (doc.errors.length > 0) {
    const error = doc.errors[0];
    const line = error.linePos?.[0].line ?? lineOf(null);
    throw usageError(`${file}:${line}: invalid YAML: ${error.message.split("\n")[0]}`);
  }
  const root = doc.contents;
  if (root === null || root === undefined) throw usageError(`${file}: the config file is empty`);
  if (!isMap(root)) throw usageError(`${file}:${lineOf(root)}: expected a map of settings at the top level`);

  const base = dirname(resolve(file));
  const config: WatchConfig = { file, dbs: [] };
  let dbsSeen = false;
  for (const { key, value, at } of entries(root, file, "", lineOf)) {
    if (key === "dbs") {
      dbsSeen = true;
      if (!isSeq(value)) throw configError(at, "expected a list of databases (- path: ...)");
      value.items.forEach((item, i) => {
        const itemAt = { file, line: lineOf(item as Node), key: `dbs[${i}]` };
        if (!isMap(item)) throw configError(itemAt, "expected a map with at least a path");
        config.dbs.push(parseDatabase(item, itemAt, base, lineOf, env));
      });
      continue;
    }
    const spec = GLOBAL_KEYS[key];
    if (!spec) {
      throw configError(at, `unknown key (known: ${[...Object.keys(GLOBAL_KEYS), "dbs"].join(", ")})`);
    }
    let converted = convert(value, spec[1], at, env);
    if (spec[1] === "path") converted = resolve(base, converted as string);
    if (key === "encryption-key-file") config.encryptionKeyAt = `${file}:${at.line}: ${key}`;
    (config as unknown as Record<string, unknown>)[spec[0]] = converted;
  }
  if (!dbsSeen) throw usageError(`${file}: no databases: add a "dbs:" list (- path: /srv/app.db)`);
  checkNames(config.dbs);
  return config;
}

/** The key/value pairs of a map, each with its position; keys must be plain strings. */
function* entries(
  map: YAMLMap,
  file: string,
  parent: string,
  lineOf: (node: Node | null | undefined) => number,
): Generator<{ key: string; value: unknown; at: Position }> {
  const seen = new Map<string, number>();
  for (const pair of map.items) {
    const keyNode = pair.key as Node;
    const key = isScalar(keyNode) ? String(keyNode.value) : String(keyNode);
    const at = { file, line: lineOf(keyNode), key: parent + key };
    if (seen.has(key)) throw configError(at, `duplicate key (first given at line ${seen.get(key)})`);
    seen.set(key, at.line);
    yield { key, value: pair.value, at };
  }
}

function parseDatabase(
  map: YAMLMap,
  at: Position,
  base: string,
  lineOf: (node: Node | null | undefined) => number,
  env: (name: string) => string | undefined,
): DatabaseConfig {
  const db: Partial<DatabaseConfig> = { where: `${at.file}:${at.line}` };
  let nameAt: Position | undefined;
  for (const { key, value, at: keyAt } of entries(map, at.file, `${at.key}.`, lineOf)) {
    const spec = DB_KEYS[key];
    if (!spec) throw configError(keyAt, `unknown key (known: ${Object.keys(DB_KEYS).join(", ")})`);
    (db as Record<string, unknown>)[spec[0]] = convert(value, spec[1], keyAt, env);
    if (key === "name") nameAt = keyAt;
  }
  if (db.path === undefined) throw configError(at, "missing path");
  db.path = resolve(base, db.path);
  db.glob = isGlob(db.path);
  if (db.name !== undefined) {
    if (db.glob) {
      throw configError(nameAt!, "a name cannot be given to a glob (each match is named after its file)");
    }
    try {
      validateName(db.name);
    } catch (e) {
      throw configError(nameAt!, (e as Error).message);
    }
  }
  return db as DatabaseConfig;
}

/** Checks a scalar's type and converts it (durations to ms); expands `${VAR}` in strings first. */
function convert(
  node: unknown,
  kind: Kind,
  at: Position,
  env: (name: string) => string | undefined,
): unknown {
  if (!isScalar(node) || node.value === null || typeof node.value === "object") {
    throw configError(at, `expected ${describe(kind)}`);
  }
  let value = node.value as string | number | boolean;
  if (typeof value === "string") {
    try {
      value = expandVariables(value, env);
    } catch (e) {
      if (e instanceof ExpansionError) throw configError(at, e.message);
      throw e;
    }
  }
  if (kind === "duration") {
    const ms = typeof value === "boolean" ? null : parseDuration(value);
    if (ms === null) throw configError(at, `expected ${describe(kind)}, got "${value}"`);
    return ms;
  }
  if (kind === "retention") {
    try {
      return typeof value === "boolean" ? parseRetention("?") : parseRetention(String(value));
    } catch {
      throw configError(at, `expected ${describe(kind)}, got "${value}"`);
    }
  }
  if (kind === "levels") {
    const text = String(value).trim().toLowerCase();
    if (text === "off" || text === "none") return null;
    try {
      return parseLevels(text);
    } catch {
      throw configError(at, `expected ${describe(kind)}, got "${value}"`);
    }
  }
  if (kind === "count" || kind === "level") {
    const n = typeof value === "boolean" ? NaN : Number(value);
    if (!Number.isInteger(n) || n <= 0 || (kind === "level" && n > ZSTD_LEVELS.max)) {
      throw configError(at, `expected ${describe(kind)}, got "${value}"`);
    }
    return n;
  }
  if (typeof value === "number" && (kind === "string" || kind === "path")) value = String(value); // name: 2024
  if (typeof value !== "string" || value === "") {
    throw configError(at, `expected ${describe(kind)}, got ${JSON.stringify(value)}`);
  }
  if (typeof kind === "object" && !kind.oneOf.includes(value)) {
    throw configError(at, `expected ${describe(kind)}, got "${value}"`);
  }
  if (kind === "url") {
    try {
      parseBackupUrl(value);
    } catch (e) {
      throw configError(at, (e as Error).message);
    }
  }
  if (kind === "address" && parseAddress(value) === null) {
    throw configError(at, `expected ${describe(kind)}, got "${value}"`);
  }
  return value;
}

function describe(kind: Kind): string {
  if (typeof kind === "object") return `one of ${kind.oneOf.join(", ")}`;
  return {
    string: "a string",
    path: "a file path",
    retention: "a duration (1h, 7d...), or 0 or forever to keep everything",
    url: "a backup URL (s3://bucket[/prefix] or file:///dir)",
    duration: "a duration (500ms, 15s, 5m, 1h, 7d, or seconds)",
    count: "a positive whole number",
    levels: "increasing durations, each a multiple of the previous (e.g. 30s,5m,1h), or off",
    level: `a zstd level from ${ZSTD_LEVELS.min} (fastest) to ${ZSTD_LEVELS.max} (smallest)`,
    address: "HOST:PORT or :PORT",
  }[kind];
}

/** Parses `HOST:PORT`, `:PORT` or `PORT` (host defaults to 127.0.0.1); null when malformed. */
export function parseAddress(text: string): { hostname: string; port: number } | null {
  const m = /^(?:(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]*):)?(\d{1,5})$/.exec(text.trim());
  if (!m) return null;
  const port = Number(m[2]);
  if (port > 65535) return null;
  return { hostname: (m[1] || "127.0.0.1").replace(/^\[|\]$/g, ""), port };
}

/** Two entries with one explicit name, or one path given twice, are errors. */
function checkNames(dbs: DatabaseConfig[]): void {
  const names = new Map<string, DatabaseConfig>();
  const paths = new Map<string, DatabaseConfig>();
  for (const db of dbs) {
    const samePath = paths.get(db.path);
    if (samePath) {
      throw usageError(`${db.where}: path: ${db.path} is already listed at line ${lineNumber(samePath)}`);
    }
    paths.set(db.path, db);
    if (db.name === undefined) continue;
    const sameName = names.get(db.name);
    if (sameName) {
      throw usageError(
        `${db.where}: name: "${db.name}" is already used by ${sameName.path} (line ${lineNumber(sameName)})`,
      );
    }
    names.set(db.name, db);
  }
}

function lineNumber(db: DatabaseConfig): string {
  return db.where.slice(db.where.lastIndexOf(":") + 1);
}

/** A plain path must be a readable regular file; a glob's fixed directory must be readable. */
async function checkReadable(db: DatabaseConfig): Promise<void> {
  const path = db.glob ? globBase(db.path) : db.path;
  try {
    const stat = await Deno.stat(path);
    if (db.glob) {
      if (!stat.isDirectory) throw new Error("not a directory");
      for await (const _ of Deno.readDir(path)) break;
    } else {
      if (!stat.isFile) throw new Error("not a regular file");
      (await Deno.open(path, { read: true })).close();
    }
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound
      ? "no such file or directory"
      : e instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : (e as Error).message;
    throw usageError(`${db.where}: path: cannot read ${path}: ${why}`);
  }
}
