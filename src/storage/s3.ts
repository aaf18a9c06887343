/**
 * An S3-compatible store (AWS S3, Ceph RGW, MinIO, R2, Tigris ...), built on s3-lite-client.
 *
 * Uploads stream: s3-lite-client buffers a whole request body (or a 64 MB part) in memory to sign
 * it, so a PUT is sent instead to a pre-signed URL (UNSIGNED-PAYLOAD) with a streaming body and an
 * explicit Content-Length; memory stays flat whatever the object size.
 * @module
 */
import { S3Client, S3Errors } from "@bradenmacdonald/s3-lite-client";
import { notFoundError, storageError, usageError, WalsyncError } from "../errors.ts";
import { redact } from "../redact.ts";
import { type PutResponse, streamingPut } from "./http_put.ts";
import type { ByteSource } from "./source.ts";
import type { ListedObject, ObjectData, ObjectInfo, Store } from "./store.ts";

const META_PREFIX = "x-amz-meta-";
/** Single PUTs are limited to 5 GiB by S3. */
export const MAX_SINGLE_PUT = 5 * 1024 ** 3;

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
}

/** A {@link Store} on an S3-compatible server. */
export class S3Store implements Store {
  readonly url: string;
  readonly #client: S3Client;
  readonly #prefix: string;
  readonly #endpoint: string;

  constructor(settings: S3Settings) {
    const { bucket, prefix, region } = settings;
    this.url = `s3://${bucket}${prefix ? "/" + prefix : ""}`;
    this.#prefix = prefix ? prefix + "/" : "";
    if (!settings.accessKeyId || !settings.secretAccessKey) {
      throw usageError(
        "missing S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment",
      );
    }
    const custom = settings.endpoint !== undefined;
    this.#endpoint = settings.endpoint ?? `https://s3.${region}.amazonaws.com`;
    let endpointUrl: URL;
    try {
      endpointUrl = new URL(this.#endpoint);
      if (endpointUrl.protocol !== "http:" && endpointUrl.protocol !== "https:") throw new Error("scheme");
    } catch {
      throw usageError(`invalid S3 endpoint "${this.#endpoint}": expected http(s)://host[:port]`);
    }
    try {
      this.#client = new S3Client({
        endPoint: this.#endpoint,
        region,
        bucket,
        accessKey: settings.accessKeyId,
        secretKey: settings.secretAccessKey,
        sessionToken: settings.sessionToken,
        // Custom endpoints (RGW, MinIO, ...) generally need path-style addressing.
        pathStyle: custom,
      });
    } catch (e) {
      throw usageError(`invalid S3 settings: ${redact((e as Error).message)}`);
    }
  }

  #fullKey(key: string): string {
    return this.#prefix + key;
  }

  /** Turns a client or network error into a clear WalsyncError without secrets or signatures. */
  #explain(e: unknown, what: string, key?: string): WalsyncError {
    if (e instanceof WalsyncError) return e;
    if (e instanceof S3Errors.ServerError) {
      if (e.statusCode === 403) {
        return storageError(
          `access denied by ${this.#endpoint} while trying to ${what} (${e.code}): check AWS_ACCESS_KEY_ID, ` +
            `AWS_SECRET_ACCESS_KEY and the bucket's permissions`,
        );
      }
      if (e.code === "NoSuchBucket") {
        return storageError(
          `bucket "${this.url.slice(5).split("/")[0]}" does not exist at ${this.#endpoint}`,
        );
      }
      if (e.statusCode === 404 && key !== undefined) {
        return notFoundError(`object ${this.url}/${key} does not exist`);
      }
      return storageError(
        `S3 error while trying to ${what}: ${e.statusCode} ${e.code}: ${redact(e.message)}`,
      );
    }
    const message = redact(e instanceof Error ? e.message : String(e));
    return storageError(`cannot reach S3 endpoint ${this.#endpoint} to ${what}: ${message}`, undefined);
  }

  async put(key: string, body: ByteSource, metadata: Record<string, string>, contentMd5?: string) {
    const size = body.size;
    if (size > MAX_SINGLE_PUT) {
      throw new WalsyncError(`object ${key} is ${size} bytes; objects over 5 GiB are not supported yet`);
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(metadata)) headers[META_PREFIX + k] = v;
    let response: PutResponse;
    try {
      const url = await this.#client.getPresignedUrl("PUT", this.#fullKey(key), {
        extraHeaders: headers,
        expirySeconds: 3600,
      });
      const sent = contentMd5 ? { ...headers, "content-md5": contentMd5 } : headers;
      response = await streamingPut(url, sent, body);
    } catch (e) {
      throw this.#explain(e, `upload ${key}`);
    }
    if (response.status < 200 || response.status >= 300) {
      const error = await S3Errors.parseServerError(new Response(response.text, { status: response.status }));
      throw this.#explain(error, `upload ${key}`);
    }
  }

  async get(key: string): Promise<ObjectData> {
    let response: Response;
    try {
      response = await this.#client.getObject(this.#fullKey(key));
    } catch (e) {
      throw this.#explain(e, `download ${key}`, key);
    }
    const size = Number(response.headers.get("content-length") ?? "NaN");
    return { key, size, metadata: userMetadata(response.headers), body: response.body! };
  }

  async head(key: string): Promise<ObjectInfo | null> {
    try {
      const stat = await this.#client.statObject(this.#fullKey(key));
      const metadata: Record<string, string> = {};
      for (const [k, v] of Object.entries(stat.metadata)) {
        if (k.startsWith(META_PREFIX) && v !== undefined) metadata[k.slice(META_PREFIX.length)] = v;
      }
      return { key, size: stat.size, metadata };
    } catch (e) {
      if (e instanceof S3Errors.ServerError && e.statusCode === 404) {
        // A HEAD has no body, so a missing bucket looks like a missing key; tell them apart.
        if (!(await this.#bucketExists())) {
          throw this.#explain(new S3Errors.ServerError(404, "NoSuchBucket", ""), "");
        }
        return null;
      }
      throw this.#explain(e, `read metadata of ${key}`);
    }
  }

  async #bucketExists(): Promise<boolean> {
    try {
      return await this.#client.bucketExists(this.url.slice(5).split("/")[0]);
    } catch (e) {
      throw this.#explain(e, "check the bucket");
    }
  }

  async *list(prefix: string): AsyncIterable<ListedObject> {
    try {
      for await (const object of this.#client.listObjects({ prefix: this.#fullKey(prefix) })) {
        yield { key: object.key.slice(this.#prefix.length), size: object.size };
      }
    } catch (e) {
      throw this.#explain(e, `list ${this.url}`);
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.#client.deleteObject(this.#fullKey(key));
    } catch (e) {
      if (e instanceof S3Errors.ServerError && e.statusCode === 404) return;
      throw this.#explain(e, `delete ${key}`);
    }
  }
}

function userMetadata(headers: Headers): Record<string, string> {
  const metadata: Record<string, string> = {};
  headers.forEach((value, name) => {
    const lower = name.toLowerCase();
    if (lower.startsWith(META_PREFIX)) metadata[lower.slice(META_PREFIX.length)] = value;
  });
  return metadata;
}
