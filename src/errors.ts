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
