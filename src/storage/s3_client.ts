/**
 * The settings of an S3 store, checked, and the two signers built from them: s3-lite-client (for
 * LIST, multi-delete and multipart calls) and walsync's own pre-signer (for GET, HEAD, PUT and
 * DELETE of single objects, see presign.ts), both with the same addressing.
 * @module
 */
import { S3Client } from "@bradenmacdonald/s3-lite-client";
import { usageError } from "../errors.ts";
import { redact } from "../redact.ts";
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
