/**
 * Logging to stderr. stdout is reserved for results (tables, JSON) so that scripts can parse it.
 *
 * Two formats: `human` (the default: `<ISO time> <LEVEL> <message>`) and `json` (`--log-format json`:
 * one object per line, `{"time","level","database"?,"message","fields"?}`, for log shippers).
 * The database is taken from the `fields` argument or, for messages written as `<name>: ...`, from
 * the names registered with {@link registerDatabase}.
 * @module
 */

/** Log levels, least to most severe. */
export type LogLevel = "debug" | "info" | "warn" | "error";
/** Output formats. */
export type LogFormat = "human" | "json";

const SEVERITY: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

let threshold: LogLevel = "info";
let format: LogFormat = "human";
const databases = new Set<string>();
/** Called before each line is written (the progress line clears itself). */
let beforeWrite: (() => void) | null = null;

/** Structured details of a log line (`database` is lifted to the top level in JSON). */
export type LogFields = Record<string, unknown> & { database?: string };

/**
 * Sets the level and format. `quiet` means warn, `verbose` debug; an explicit `level` wins over both.
 * Options left undefined keep their current value.
 */
export function configureLog(
  options: {
    quiet?: boolean;
    verbose?: boolean;
    level?: LogLevel;
    format?: LogFormat;
    logFormat?: LogFormat;
  },
): void {
  if (options.level) threshold = options.level;
  else if (options.verbose) threshold = "debug";
  else if (options.quiet) threshold = "warn";
  else if (options.quiet === false || options.verbose === false) threshold = "info";
  const wanted = options.format ?? options.logFormat;
  if (wanted) format = wanted;
}

/** The current settings (for tests and for the progress display, which is off below info). */
export function logSettings(): { level: LogLevel; format: LogFormat } {
  return { level: threshold, format };
}

/** Names of the watched databases: `<name>: message` lines get `"database": "<name>"` in JSON. */
export function registerDatabase(name: string): void {
  databases.add(name);
}

/** Lets the progress display clear its line before a log line is written. */
export function onBeforeWrite(hook: (() => void) | null): void {
  beforeWrite = hook;
}

/** Formats one line in the current format (exported for tests). */
export function formatLine(level: LogLevel, message: string, fields?: LogFields, time = new Date()): string {
  if (format === "human") {
    return `${time.toISOString()} ${level.toUpperCase()} ${message}\n`;
  }
  const { database: given, ...rest } = fields ?? {};
  let database = given;
  if (database === undefined) {
    const colon = message.indexOf(": ");
    if (colon > 0 && databases.has(message.slice(0, colon))) database = message.slice(0, colon);
  }
  const line: Record<string, unknown> = { time: time.toISOString(), level };
  if (database !== undefined) line.database = database;
  line.message = message;
  if (Object.keys(rest).length > 0) line.fields = rest;
  return JSON.stringify(line) + "\n";
}

function emit(level: LogLevel, message: string, fields?: LogFields): void {
  if (SEVERITY[level] < SEVERITY[threshold]) return;
  beforeWrite?.();
  Deno.stderr.writeSync(new TextEncoder().encode(formatLine(level, message, fields)));
}

/** Logs an informational message (suppressed by --quiet). */
export function info(message: string, fields?: LogFields): void {
  emit("info", message, fields);
}

/** Logs a warning (always shown unless the level is error). */
export function warn(message: string, fields?: LogFields): void {
  emit("warn", message, fields);
}

/** Logs an error (always shown). */
export function error(message: string, fields?: LogFields): void {
  emit("error", message, fields);
}

/** Logs a debug message (only with --verbose or level debug). */
export function debug(message: string, fields?: LogFields): void {
  emit("debug", message, fields);
}
