/**
 * Opens the store for a backup URL, taking S3 settings from the environment (docs/design.md), and
 * sets the codec its snapshots and segments are written and read with.
 * @module
 */
import { type Compression, COMPRESSIONS } from "../codec/codec.ts";
import { loadEncryptionKey } from "../codec/key.ts";
import { usageError } from "../errors.ts";
import { parseBackupUrl } from "../url.ts";
import { FileStore } from "./file.ts";
import { S3Store } from "./s3.ts";
import { DEFAULT_RETRY, RetryingStore, type RetryPolicy } from "./retry.ts";
import type { Store } from "./store.ts";

/** Options that override the environment. */
export interface StoreOptions {
  /** S3 endpoint URL; overrides AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL. */
  endpoint?: string;
  /** Environment to read; defaults to the process environment. */
  env?: (name: string) => string | undefined;
  /** Retry policy for transient failures (default: {@link DEFAULT_RETRY}). */
  retry?: RetryPolicy;
  /** Compression of new snapshots and segments: "zstd" (default) or "none". */
  compression?: string;
  /** File holding the encryption key; overrides WALSYNC_ENCRYPTION_KEY. */
  encryptionKeyFile?: string;
}

/**
 * Opens the store for `url` (`s3://bucket[/prefix]` or `file:///dir`).
 * Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), the
 * endpoint from `--endpoint` or AWS_ENDPOINT_URL_S3, the region from AWS_REGION (default us-east-1),
 * the per-request timeout from WALSYNC_S3_TIMEOUT_MS (default 30 s). S3 calls are retried with
 * backoff when they fail transiently. The codec: zstd unless `compression` is "none"; encryption
 * when a key is given (`encryptionKeyFile`, else WALSYNC_ENCRYPTION_KEY).
 * @throws WalsyncError (usage) for an unknown compression or a bad key.
 */
export function openStore(url: string, options: StoreOptions = {}): Store {
  const env = options.env ?? ((name: string) => Deno.env.get(name));
  const compression = (options.compression ?? "zstd") as Compression;
  if (!COMPRESSIONS.includes(compression)) {
    throw usageError(`invalid --compression "${options.compression}": expected ${COMPRESSIONS.join(" or ")}`);
  }
  const key = loadEncryptionKey(options.encryptionKeyFile, env);
  const store = openBackend(url, options, env);
  store.codec = { compression, key };
  return store;
}

function openBackend(url: string, options: StoreOptions, env: (name: string) => string | undefined): Store {
  const location = parseBackupUrl(url);
  if (location.kind === "file") return new FileStore(location.dir);
  const timeout = Number(env("WALSYNC_S3_TIMEOUT_MS"));
  const s3 = new S3Store({
    bucket: location.bucket,
    prefix: location.prefix,
    endpoint: options.endpoint || env("AWS_ENDPOINT_URL_S3") || env("AWS_ENDPOINT_URL") || undefined,
    region: env("AWS_REGION") || env("AWS_DEFAULT_REGION") || "us-east-1",
    accessKeyId: env("AWS_ACCESS_KEY_ID"),
    secretAccessKey: env("AWS_SECRET_ACCESS_KEY"),
    sessionToken: env("AWS_SESSION_TOKEN"),
    timeoutMs: timeout > 0 ? timeout : undefined,
    multipartThreshold: Number(env("WALSYNC_MULTIPART_THRESHOLD")) || undefined,
    partSize: Number(env("WALSYNC_MULTIPART_PART_SIZE")) || undefined,
  });
  return new RetryingStore(s3, options.retry ?? DEFAULT_RETRY);
}
