/**
 * Opens the store for a backup URL, taking S3 settings from the environment (docs/design.md §10), and
 * sets the codec its snapshots and segments are written and read with.
 * @module
 */
import { type Compression, COMPRESSIONS } from "../codec/codec.ts";
import { type EncryptionKey, loadEncryptionKey } from "../codec/key.ts";
import { DEFAULT_ZSTD_LEVEL, ZSTD_LEVELS } from "../codec/zstd.ts";
import { usageError } from "../errors.ts";
import { parseBackupUrl } from "../url.ts";
import { FileStore } from "./file.ts";
import { S3Store } from "./s3.ts";
import { DEFAULT_RETRY, RetryingStore, type RetryPolicy } from "./retry.ts";
import type { Store } from "./store.ts";
import { credentialProvider, profileSettings } from "./credentials.ts";
import { RefreshingS3Store } from "./refreshing_store.ts";
import { CountingStore } from "./counting_store.ts";

/** Options that override the environment. */
export interface StoreOptions {
  /** S3 endpoint URL; overrides AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL. */
  endpoint?: string;
  /** Environment to read; defaults to the process environment. */
  env?: (name: string) => string | undefined;
  /** AWS profile (`--profile`); AWS_PROFILE otherwise. */
  profile?: string;
  /** Region (config file); wins over AWS_REGION and the profile's region, like --endpoint. */
  region?: string;
  /** Retry policy for transient failures (default: {@link DEFAULT_RETRY}). */
  retry?: RetryPolicy;
  /** Compression of new snapshots and segments: "zstd" (default) or "none". */
  compression?: string;
  /** zstd level of new snapshots and segments, 1 to 19 (default 3). */
  compressionLevel?: string | number;
  /** File holding the encryption key; overrides WALSYNC_ENCRYPTION_KEY. */
  encryptionKeyFile?: string;
  /** A key already read (the config file's); used when neither the file above nor the variable gives one. */
  encryptionKey?: EncryptionKey;
}

/**
 * Opens the store for `url` (`s3://bucket[/prefix]` or `file:///dir`).
 * Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), the
 * endpoint from `--endpoint` or AWS_ENDPOINT_URL_S3, the region from AWS_REGION (default us-east-1),
 * the per-request timeout from WALSYNC_S3_TIMEOUT_MS (default 30 s). S3 calls are retried with
 * backoff when they fail transiently. The codec: zstd (at `compressionLevel`) unless `compression` is
 * "none"; encryption when a key is given (`encryptionKeyFile`, else WALSYNC_ENCRYPTION_KEY, else
 * `encryptionKey`).
 * @throws WalsyncError (usage) for an unknown compression or level, or a bad key.
 */
export function openStore(url: string, options: StoreOptions = {}): Store {
  const env = options.env ?? ((name: string) => Deno.env.get(name));
  const compression = (options.compression ?? "zstd") as Compression;
  if (!COMPRESSIONS.includes(compression)) {
    throw usageError(`invalid --compression "${options.compression}": expected ${COMPRESSIONS.join(" or ")}`);
  }
  const level = compressionLevel(options.compressionLevel);
  const key = loadEncryptionKey(options.encryptionKeyFile, env) ?? options.encryptionKey ?? null;
  const store = openBackend(url, options, env);
  store.codec = { compression, key, level };
  return store;
}

/** Checks `--compression-level` (or WALSYNC_COMPRESSION_LEVEL); the default when absent. */
export function compressionLevel(text: string | number | undefined): number {
  if (text === undefined || text === "") return DEFAULT_ZSTD_LEVEL;
  const level = Number(text);
  if (!Number.isInteger(level) || level < ZSTD_LEVELS.min || level > ZSTD_LEVELS.max) {
    throw usageError(
      `invalid --compression-level "${text}": expected a whole number from ${ZSTD_LEVELS.min} (fastest) to ` +
        `${ZSTD_LEVELS.max} (smallest)`,
    );
  }
  return level;
}

function openBackend(url: string, options: StoreOptions, env: (name: string) => string | undefined): Store {
  const location = parseBackupUrl(url);
  if (location.kind === "file") return new CountingStore(new FileStore(location.dir));
  const timeout = Number(env("WALSYNC_S3_TIMEOUT_MS"));
  // Credentials, region and endpoint_url as the AWS CLI finds them (src/storage/credentials.ts).
  const provider = credentialProvider(options.profile, env);
  const profile = profileSettings(options.profile, env);
  const settings = {
    bucket: location.bucket,
    prefix: location.prefix,
    endpoint: options.endpoint || env("AWS_ENDPOINT_URL_S3") || env("AWS_ENDPOINT_URL") ||
      profile.endpointUrl ||
      undefined,
    region: options.region || env("AWS_REGION") || env("AWS_DEFAULT_REGION") || profile.region || "us-east-1",
    timeoutMs: timeout > 0 ? timeout : undefined,
    multipartThreshold: Number(env("WALSYNC_MULTIPART_THRESHOLD")) || undefined,
    partSize: Number(env("WALSYNC_MULTIPART_PART_SIZE")) || undefined,
  };
  const s3 = provider.sourceName === "environment variables"
    ? new S3Store({
      ...settings,
      accessKeyId: env("AWS_ACCESS_KEY_ID"),
      secretAccessKey: env("AWS_SECRET_ACCESS_KEY"),
      sessionToken: env("AWS_SESSION_TOKEN"),
    })
    : new RefreshingS3Store(settings, provider);
  return new RetryingStore(new CountingStore(s3), options.retry ?? DEFAULT_RETRY);
}
