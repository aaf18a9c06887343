/**
 * The settings of an S3 store (and the multipart sizes they imply), checked, and the two signers
 * built from them: s3-lite-client (for LIST, multi-delete and multipart calls) and walsync's own
 * pre-signer (for GET, HEAD, PUT and DELETE of single objects, see presign.ts), both with the same
 * addressing.
 * @module
 */
import { S3Client } from "@bradenmacdonald/s3-lite-client";
import { usageError } from "../errors.ts";
import { redact } from "../redact.ts";
import { MIN_PART_SIZE } from "./multipart.ts";
import { Presigner } from "./presign.ts";

/** Connection settings for an S3 store. */
export interface S3Settings {
  bucket: string;
  prefix: string;
  /** e.g. `http://127.0.0.1:7480`; AWS's regional endpoint when absent. */
  endpoint?: string;
  region: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
  /** Per-request timeout in milliseconds. */
  timeoutMs?: number;
  /** Objects above this size use multipart uploads (at most 5 GiB). */
  multipartThreshold?: number;
  /** Preferred multipart part size. */
  partSize?: number;
}

/** Single PUTs are limited to 5 GiB by S3. */
export const MAX_SINGLE_PUT = 5 * 1024 ** 3;
/** Objects larger than this are uploaded in parts (WALSYNC_MULTIPART_THRESHOLD overrides, bytes). */
const DEFAULT_MULTIPART_THRESHOLD = 256 * 1024 * 1024;
/** Preferred part size (WALSYNC_MULTIPART_PART_SIZE overrides, bytes; at least 5 MiB). */
const DEFAULT_PART_SIZE = 64 * 1024 * 1024;

/** The size above which `settings` make an S3 store upload in parts (S3 caps a single PUT at 5 GiB). */
export function multipartThresholdOf(settings: Pick<S3Settings, "multipartThreshold">): number {
  return Math.min(settings.multipartThreshold ?? DEFAULT_MULTIPART_THRESHOLD, MAX_SINGLE_PUT);
}

/** The part size `settings` ask for, at least S3's minimum of 5 MiB. */
export function partSizeOf(settings: Pick<S3Settings, "partSize">): number {
  return Math.max(settings.partSize ?? DEFAULT_PART_SIZE, MIN_PART_SIZE);
}

/** What a store signs its requests with, and the endpoint they go to. */
export interface OpenedS3Client {
  endpoint: string;
  client: S3Client;
  presigner: Presigner;
}

/**
 * Checks `settings` (credentials present, an http(s) endpoint) and builds the client and the
 * pre-signer. Custom endpoints (RGW, MinIO, ...) use path-style addressing.
 * @throws WalsyncError (usage, exit 2) naming what is missing or invalid, without secrets.
 */
export function openS3Client(settings: S3Settings): OpenedS3Client {
  const { bucket, region } = settings;
  if (!settings.accessKeyId || !settings.secretAccessKey) {
    throw usageError(
      "missing S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment",
    );
  }
  const custom = settings.endpoint !== undefined;
  const endpoint = settings.endpoint ?? `https://s3.${region}.amazonaws.com`;
  try {
    const endpointUrl = new URL(endpoint);
    if (endpointUrl.protocol !== "http:" && endpointUrl.protocol !== "https:") throw new Error("scheme");
  } catch {
    throw usageError(`invalid S3 endpoint "${endpoint}": expected http(s)://host[:port]`);
  }
  let client: S3Client;
  try {
    client = new S3Client({
      endPoint: endpoint,
      region,
      bucket,
      accessKey: settings.accessKeyId,
      secretKey: settings.secretAccessKey,
      sessionToken: settings.sessionToken,
      pathStyle: custom,
    });
  } catch (e) {
    throw usageError(`invalid S3 settings: ${redact((e as Error).message)}`);
  }
  const presigner = new Presigner({
    protocol: client.protocol,
    host: client.host,
    pathStyle: client.pathStyle,
    pathPrefix: client.pathPrefix ?? "",
    region,
    bucket,
    accessKey: settings.accessKeyId,
    secretKey: settings.secretAccessKey,
    sessionToken: settings.sessionToken,
  });
  return { endpoint, client, presigner };
}
