/**
 * Errors that walsync reports to the user, and the exit codes they map to.
 *
 * Every failure a user can cause or meet (bad input, missing backup, denied access, corruption)
 * is thrown as a {@link WalsyncError} with a message meant for a human and an exit code meant for
 * a script. Anything else is a bug and exits with {@link ExitCode.Internal}.
 * @module
 */

/** Exit codes of the `walsync` command; documented in the README. */
export const ExitCode = {
  Ok: 0,
  /** A general runtime failure (I/O error, database busy, ...). */
  Failure: 1,
  /** Bad usage: unknown option, malformed URL, bad argument. */
  Usage: 2,
  /** The thing asked for does not exist: no such database file, no backup of that name. */
  NotFound: 3,
  /** Verification failed: a checksum mismatch, a gap, a corrupted object or a bad restored database. */
  Corrupt: 4,
  /** The store could not be used: access denied, unreachable endpoint, missing bucket. */
  Storage: 5,
  /** The output already exists and --force was not given. */
  Exists: 6,
  /** Another walsync holds the lease of this database name (see `watch`). */
  Locked: 7,
  /** Interrupted by SIGINT/SIGTERM before the work completed. */
  Interrupted: 130,
  /** A bug: an unexpected exception. */
  Internal: 70,
} as const;

/** The numeric exit code type. */
export type ExitCodeValue = typeof ExitCode[keyof typeof ExitCode];

/** An error whose message is shown to the user as is, with a meaningful exit code. */
export class WalsyncError extends Error {
  /**
   * @param message what went wrong, for a human (no secrets, no signatures)
   * @param exitCode the process exit code to use
   */
  /** True when trying again later may succeed (network errors, timeouts, 5xx, throttling). */
  readonly retryable: boolean;

  constructor(
    message: string,
    readonly exitCode: ExitCodeValue = ExitCode.Failure,
    options?: ErrorOptions & { retryable?: boolean },
  ) {
    super(message, options);
    this.name = "WalsyncError";
    this.retryable = options?.retryable ?? false;
  }
}

/** Usage error: exit code 2. */
export function usageError(message: string): WalsyncError {
  return new WalsyncError(message, ExitCode.Usage);
}

/** Something asked for does not exist: exit code 3. */
export function notFoundError(message: string): WalsyncError {
  return new WalsyncError(message, ExitCode.NotFound);
}

/** Verification failed: exit code 4. */
export function corruptError(message: string): WalsyncError {
  return new WalsyncError(message, ExitCode.Corrupt);
}

/** The store could not be used: exit code 5. `retryable` for transient failures. */
export function storageError(message: string, cause?: unknown, retryable = false): WalsyncError {
  return new WalsyncError(message, ExitCode.Storage, { cause, retryable });
}

const OS_REASONS: Record<string, string> = {
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  ENOSPC: "no space left on device",
  EDQUOT: "disk quota exceeded",
  EROFS: "read-only file system",
  EIO: "input/output error",
  ENOENT: "no such file or directory",
  ENOTDIR: "not a directory",
  EISDIR: "is a directory",
  ELOOP: "too many levels of symbolic links",
  EMFILE: "too many open files",
  ENFILE: "too many open files in the system",
  EFBIG: "file too large",
  EXDEV: "cross-device link",
};

/**
 * The reason of an operating-system error (Deno's and node:fs's errors carry an errno `code`, e.g.
 * "permission denied" for EACCES, "no space left on device" for ENOSPC), or null for any other error.
 */
export function osErrorReason(e: unknown): string | null {
  if (!(e instanceof Error)) return null;
  const code = (e as { code?: unknown }).code;
  if (typeof code !== "string" || !/^E[A-Z0-9]+$/.test(code)) return null;
  return OS_REASONS[code] ?? e.message.replace(/ \(os error \d+\).*$/s, "").toLowerCase();
}

/**
 * Rethrow helper: an operating-system error becomes a {@link WalsyncError} `"<what>: <reason>"` with
 * `exitCode`; anything else (a WalsyncError included) is returned unchanged.
 *
 * @example
 * ```ts
 * try { await Deno.open(path, { write: true }); } catch (e) { throw asUserError(e, `cannot write ${path}`); }
 * ```
 */
export function asUserError(e: unknown, what: string, exitCode: ExitCodeValue = ExitCode.Failure): unknown {
  if (e instanceof WalsyncError) return e;
  const reason = osErrorReason(e);
  return reason === null ? e : new WalsyncError(`${what}: ${reason}`, exitCode, { cause: e });
}
