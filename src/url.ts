/**
 * Parsing of backup locations: `s3://bucket[/prefix]` and `file:///abs/dir` (or `file://./rel/dir`).
 * File URLs are percent-decoded: `%20` is a space, `%25` a "%"; a stray "%" is refused.
 * @module
 */
import { resolve } from "node:path";
import { usageError } from "./errors.ts";

/** Where backups live: a bucket and key prefix on S3, or a local directory. */
export type BackupLocation =
  | { kind: "s3"; bucket: string; prefix: string; url: string }
  | { kind: "file"; dir: string; url: string };

const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/**
 * Parses a backup URL.
 *
 * @example
 * ```ts
 * parseBackupUrl("s3://my-bucket/backups"); // { kind: "s3", bucket: "my-bucket", prefix: "backups", ... }
 * parseBackupUrl("file:///var/backups");   // { kind: "file", dir: "/var/backups", ... }
 * ```
 * @throws WalsyncError (usage) for anything else, saying what is accepted.
 */
export function parseBackupUrl(url: string, cwd = Deno.cwd()): BackupLocation {
  const accepted = "expected s3://bucket[/prefix] or file:///absolute/dir (or file://./relative/dir)";
  if (url.startsWith("s3://")) {
    const rest = url.slice("s3://".length);
    const slash = rest.indexOf("/");
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    const prefix = (slash < 0 ? "" : rest.slice(slash + 1)).replace(/^\/+|\/+$/g, "");
    if (!BUCKET_NAME.test(bucket) || bucket.includes("..")) {
      throw usageError(`invalid bucket name "${bucket}" in backup URL "${url}": ${accepted}`);
    }
    if (prefix.split("/").some((part) => part === "." || part === "..") || prefix.includes("//")) {
      throw usageError(`invalid prefix "${prefix}" in backup URL "${url}"`);
    }
    return { kind: "s3", bucket, prefix, url };
  }
  if (url.startsWith("file://")) {
    const rest = url.slice("file://".length);
    let dir: string;
    if (rest.startsWith("/")) {
      dir = decodePath(url, rest);
    } else if (rest.startsWith("./") || rest === ".") {
      dir = resolve(cwd, decodePath(url, rest));
    } else {
      throw usageError(`ambiguous file URL "${url}": ${accepted}`);
    }
    return { kind: "file", dir: resolve(dir), url };
  }
  throw usageError(`unsupported backup URL "${url}": ${accepted}`);
}

/**
 * Percent-decodes the path of a file URL (`%20` is a space, `%25` a "%"). A "%" that does not start
 * a valid escape of UTF-8 bytes, or an escaped NUL, is refused rather than guessed at.
 */
function decodePath(url: string, text: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(text);
  } catch {
    throw usageError(
      `invalid file URL "${url}": "%" starts an escape of UTF-8 bytes in a URL; write %25 for "%" itself ` +
        `(e.g. file:///backups/50%25off), %20 for a space`,
    );
  }
  if (decoded.includes("\0")) throw usageError(`invalid file URL "${url}": it contains a NUL byte (%00)`);
  return decoded;
}
