/**
 * Logging to stderr. stdout is reserved for results (tables, JSON) so that scripts can parse it.
 * @module
 */

let quiet = false;
let verbose = false;

/** Sets the log level from the global command-line flags. */
export function configureLog(options: { quiet?: boolean; verbose?: boolean }): void {
  quiet = options.quiet ?? false;
  verbose = options.verbose ?? false;
}

function emit(level: string, message: string): void {
  const line = `${new Date().toISOString()} ${level} ${message}\n`;
  Deno.stderr.writeSync(new TextEncoder().encode(line));
}

/** Logs an informational message (suppressed by --quiet). */
export function info(message: string): void {
  if (!quiet) emit("INFO", message);
}

/** Logs a warning (always shown). */
export function warn(message: string): void {
  emit("WARN", message);
}

/** Logs an error (always shown). */
export function error(message: string): void {
  emit("ERROR", message);
}

/** Logs a debug message (only with --verbose). */
export function debug(message: string): void {
  if (verbose) emit("DEBUG", message);
}
