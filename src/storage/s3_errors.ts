/**
 * What the S3 store says when a call fails: a WalsyncError that names the endpoint, the bucket or the
 * object and what was being done, never a secret or a signature, marked retryable when trying again
 * may help (network errors, timeouts, 5xx, throttling; docs/design.md §9).
 * @module
 */
import { S3Errors } from "@bradenmacdonald/s3-lite-client";
import { notFoundError, storageError, WalsyncError } from "../errors.ts";
import { redact } from "../redact.ts";
import { TimeoutError } from "./s3_http.ts";

/** Where a failed call went. */
export interface S3Target {
  endpoint: string;
  bucket: string;
  timeoutMs: number;
  /** The object's URL (s3://bucket/prefix/key) when the call was about one object: a 404 is "not found". */
  objectUrl?: string;
}

/** Turns a client, HTTP or network error of a call that tried to `what` into a clear WalsyncError. */
export function explainS3Error(e: unknown, what: string, target: S3Target): WalsyncError {
  const { endpoint } = target;
  if (e instanceof WalsyncError) return e;
  if (e instanceof S3Errors.ServerError) {
    if (e.statusCode === 403) {
      return storageError(
        `access denied by ${endpoint} while trying to ${what} (${e.code}): check AWS_ACCESS_KEY_ID, ` +
          `AWS_SECRET_ACCESS_KEY and the bucket's permissions`,
      );
    }
    if (e.code === "NoSuchBucket") {
      return storageError(`bucket "${target.bucket}" does not exist at ${endpoint}`);
    }
    if (e.statusCode === 404 && target.objectUrl !== undefined) {
      return notFoundError(`object ${target.objectUrl} does not exist`);
    }
    const transient = e.statusCode >= 500 || e.statusCode === 408 || e.statusCode === 429 ||
      e.code === "BadDigest" || e.code === "RequestTimeout" || e.code === "SlowDown";
    return storageError(
      `S3 error while trying to ${what}: ${e.statusCode} ${e.code}: ${redact(e.message)}`,
      undefined,
      transient,
    );
  }
  if (e instanceof TimeoutError) {
    return storageError(
      `S3 endpoint ${endpoint} did not answer within ${target.timeoutMs} ms (${what})`,
      e,
      true,
    );
  }
  const message = redact(e instanceof Error ? e.message : String(e));
  return storageError(`cannot reach S3 endpoint ${endpoint} to ${what}: ${message}`, undefined, true);
}
