/**
 * An S3-compatible store (AWS S3, Ceph RGW, MinIO, R2, Tigris ...), built on s3-lite-client.
 *
 * The client signs; the requests are sent here, to control memory and time:
 * - PUT goes to a pre-signed URL (UNSIGNED-PAYLOAD) with a streaming body and an explicit
 *   Content-Length (s3-lite-client would buffer a whole body, or a 64 MB part, to sign it);
 * - GET, HEAD and DELETE use pre-signed URLs with fetch and an AbortController, so that every
 *   request has a timeout: until the response headers arrive, and then between two body reads;
 * - LIST, multi-delete and multipart calls go through the client, raced against the same timeout
 *   including the read of their answer (a connection can hang after the headers; docs/design.md §9).
 * Errors become WalsyncErrors that say what happened without secrets or signatures, and are marked
 * retryable when trying again may help (network errors, timeouts, 5xx, throttling).
 * @module
 */
import { type S3Client, S3Errors } from "@bradenmacdonald/s3-lite-client";
import { storageError, WalsyncError } from "../errors.ts";
import { redact } from "../redact.ts";
import { type PutResponse, streamingPut } from "./http_put.ts";
import { partSizeFor } from "./multipart.ts";
import type { Presigner, PresignRequest } from "./presign.ts";
import { multipartThresholdOf, openS3Client, partSizeOf, type S3Settings } from "./s3_client.ts";
import { abortIncomplete, type S3Exchange, uploadInParts } from "./s3_multipart.ts";
import { contentMd5, deleteErrors, deleteRequestXml } from "./multi_delete.ts";
import { explainS3Error } from "./s3_errors.ts";
import {
  decodeXml,
  metadataHeaders,
  parseListPage,
  TimeoutError,
  unquote,
  userMetadata,
  watchdogBody,
  withTimeout,
} from "./s3_http.ts";
import type { ByteSource } from "./source.ts";
import type { ListedObject, ObjectData, ObjectInfo, Store, WriteCondition } from "./store.ts";

export type { S3Settings };
export { MAX_SINGLE_PUT, multipartThresholdOf } from "./s3_client.ts";

/** How long a bucket seen to exist is taken to exist (a missing key then needs no bucket check). */
const BUCKET_SEEN_MS = 5 * 60_000;

/** Default per-request timeout (headers, or silence between body reads); WALSYNC_S3_TIMEOUT_MS overrides. */
const DEFAULT_TIMEOUT_MS = 30_000;

/** A {@link Store} on an S3-compatible server. */
export class S3Store implements Store {
  readonly url: string;
  readonly #client: S3Client;
  readonly #presigner: Presigner;
  readonly #bucket: string;
  #bucketSeenUntil = -Infinity;
  readonly #prefix: string;
  readonly #endpoint: string;
  readonly #timeoutMs: number;
  readonly #multipartThreshold: number;
  readonly #partSize: number;

  constructor(settings: S3Settings) {
    const { bucket, prefix } = settings;
    this.url = `s3://${bucket}${prefix ? "/" + prefix : ""}`;
    this.#bucket = bucket;
    this.#prefix = prefix ? prefix + "/" : "";
    this.#timeoutMs = settings.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#multipartThreshold = multipartThresholdOf(settings);
    this.#partSize = partSizeOf(settings);
    const opened = openS3Client(settings);
    this.#endpoint = opened.endpoint;
    this.#client = opened.client;
    this.#presigner = opened.presigner;
  }

  /** A URL for one request on `key`, valid for an hour. */
  #presign(method: PresignRequest["method"], key: string, extraHeaders?: Record<string, string>): string {
    return this.#presigner.url({ method, objectName: this.#fullKey(key), expirySeconds: 3600, extraHeaders });
  }

  #fullKey(key: string): string {
    return this.#prefix + key;
  }

  /** Turns a client, HTTP or network error into a clear WalsyncError without secrets or signatures. */
  #explain(e: unknown, what: string, key?: string): WalsyncError {
    return explainS3Error(e, what, {
      endpoint: this.#endpoint,
      bucket: this.#bucket,
      timeoutMs: this.#timeoutMs,
      objectUrl: key === undefined ? undefined : `${this.url}/${key}`,
    });
  }

  /**
   * Sends a request to a pre-signed URL. Resolves with the response once its headers arrived within
   * the timeout; `keepAlive` returns a function to call on each body read to push the deadline on.
   */
  async #send(
    method: "GET" | "HEAD" | "DELETE",
    key: string,
  ): Promise<{ response: Response; touch: () => void; done: () => void }> {
    const url = this.#presign(method, key);
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const touch = () => {
      clearTimeout(timer);
      timer = setTimeout(() => controller.abort(new TimeoutError("timeout")), this.#timeoutMs);
    };
    const done = () => clearTimeout(timer);
    touch();
    try {
      const response = await fetch(url, { method, signal: controller.signal });
      return { response, touch, done };
    } catch (e) {
      done();
      throw controller.signal.aborted ? new TimeoutError("timeout") : e;
    }
  }

  /** Reads an error response into the client's ServerError (HEAD answers have no body: status only). */
  async #serverError(response: Response): Promise<S3Errors.ServerError> {
    if (response.status === 404 && response.headers.get("content-length") === "0") {
      return new S3Errors.ServerError(404, "NotFound", "not found");
    }
    const error = await S3Errors.parseServerError(response);
    if (error.code === "UnrecognizedError" && response.status === 404) {
      return new S3Errors.ServerError(404, "NotFound", "");
    }
    return error;
  }

  /** A single PUT sends the Content-MD5; a multipart upload sends each part's own (see s3_multipart.ts). */
  usesContentMd5(size: number): boolean {
    return size <= this.#multipartThreshold;
  }

  async put(key: string, body: ByteSource, metadata: Record<string, string>, contentMd5?: string) {
    if (body.size > this.#multipartThreshold) return await this.#putMultipart(key, body, metadata);
    const headers = metadataHeaders(metadata);
    let response: PutResponse;
    try {
      const url = this.#presign("PUT", key, headers);
      const sent = contentMd5 ? { ...headers, "content-md5": contentMd5 } : headers;
      response = await streamingPut(url, sent, body, this.#timeoutMs);
    } catch (e) {
      throw this.#explain(
        (e as Error).message === "timeout" ? new TimeoutError("timeout") : e,
        `upload ${key}`,
      );
    }
    if (response.status < 200 || response.status >= 300) {
      const error = await S3Errors.parseServerError(new Response(response.text, { status: response.status }));
      throw this.#explain(error, `upload ${key}`);
    }
  }

  /** A large object: streamed part by part; verified by its multipart ETag; aborted on failure. */
  async #putMultipart(key: string, body: ByteSource, metadata: Record<string, string>): Promise<void> {
    try {
      const expected = await uploadInParts(
        this.#exchange,
        this.#fullKey(key),
        body,
        new Headers(metadataHeaders(metadata)),
        partSizeFor(body.size, this.#partSize),
      );
      const stored = await this.head(key);
      if (stored?.etag && /-\d+$/.test(stored.etag) && stored.etag !== expected) {
        throw storageError(
          `${key}: the server stored different bytes (ETag ${stored.etag}, sent ${expected})`,
          undefined,
          true,
        );
      }
    } catch (e) {
      throw this.#explain(e, `upload ${key} (multipart)`);
    }
  }

  /** What the multipart calls need of this store. */
  get #exchange(): S3Exchange {
    return {
      client: this.#client,
      timeoutMs: this.#timeoutMs,
      withTimeout: (promise) => this.#withTimeout(promise),
    };
  }

  /**
   * Aborts the incomplete multipart uploads under `prefix` (left by a process killed mid-upload).
   * Returns how many were aborted.
   */
  async abortIncompleteUploads(prefix: string): Promise<number> {
    try {
      return await abortIncomplete(this.#exchange, this.#fullKey(prefix));
    } catch (e) {
      throw this.#explain(e, `list incomplete uploads under ${prefix}`);
    }
  }

  async putSmall(
    key: string,
    body: Uint8Array,
    metadata: Record<string, string>,
    condition: WriteCondition,
  ): Promise<string | null> {
    const headers = metadataHeaders(metadata);
    // RGW compares If-Match with the unquoted ETag; AWS accepts both forms.
    if ("ifNoneMatch" in condition) headers["if-none-match"] = "*";
    else headers["if-match"] = condition.ifMatch;
    // The whole exchange (a small body both ways) is bounded by one timeout that aborts the request,
    // so a connection hung after the headers is neither waited for nor left open.
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new TimeoutError("timeout")), this.#timeoutMs);
    try {
      let response: Response;
      try {
        const url = this.#presign("PUT", key, headers);
        response = await fetch(url, {
          method: "PUT",
          headers,
          body: body as Uint8Array<ArrayBuffer>,
          signal: controller.signal,
        });
      } catch (e) {
        throw this.#explain(controller.signal.aborted ? new TimeoutError("timeout") : e, `write ${key}`);
      }
      if (response.status === 412 || response.status === 409) {
        await response.body?.cancel();
        return null;
      }
      if (!response.ok) throw this.#explain(await this.#serverError(response), `write ${key}`);
      await response.body?.cancel();
      return unquote(response.headers.get("etag") ?? "");
    } catch (e) {
      throw controller.signal.aborted && !(e instanceof WalsyncError)
        ? this.#explain(new TimeoutError("timeout"), `write ${key}`)
        : e;
    } finally {
      clearTimeout(timer);
    }
  }

  async get(key: string): Promise<ObjectData> {
    let sent: { response: Response; touch: () => void; done: () => void };
    try {
      sent = await this.#send("GET", key);
    } catch (e) {
      throw this.#explain(e, `download ${key}`, key);
    }
    const { response, touch, done } = sent;
    if (!response.ok) {
      // The error body is read under the same timer (the abort ends a read that hangs).
      const error = await this.#serverError(response).catch((e) => e).finally(done);
      throw this.#explain(error, `download ${key}`, key);
    }
    const size = Number(response.headers.get("content-length") ?? "NaN");
    return {
      key,
      size,
      metadata: userMetadata(response.headers),
      body: watchdogBody(response.body!, this.#timeoutMs, touch, done),
    };
  }

  async head(key: string): Promise<ObjectInfo | null> {
    let response: Response;
    try {
      const sent = await this.#send("HEAD", key);
      sent.done();
      response = sent.response;
    } catch (e) {
      throw this.#explain(e, `read metadata of ${key}`);
    }
    await response.body?.cancel();
    if (response.status === 404) {
      // A HEAD has no body, so a missing bucket looks like a missing key; tell them apart.
      if (!(await this.#bucketExists())) {
        throw this.#explain(new S3Errors.ServerError(404, "NoSuchBucket", ""), "");
      }
      return null;
    }
    if (!response.ok) {
      throw this.#explain(
        new S3Errors.ServerError(response.status, `HTTP${response.status}`, ""),
        `read metadata of ${key}`,
      );
    }
    return {
      key,
      size: Number(response.headers.get("content-length") ?? "NaN"),
      metadata: userMetadata(response.headers),
      etag: unquote(response.headers.get("etag") ?? ""),
    };
  }

  /**
   * Whether the bucket exists. A yes is remembered for a few minutes: a HEAD of a missing key (a
   * retention mark, a lease) is common, and each check costs a request and, through the client,
   * about 0.9 MB of garbage (measured). A bucket deleted meanwhile still fails the next LIST or PUT.
   */
  async #bucketExists(): Promise<boolean> {
    if (performance.now() < this.#bucketSeenUntil) return true;
    try {
      const exists = await this.#withTimeout(this.#client.bucketExists(this.#bucket));
      if (exists) this.#bucketSeenUntil = performance.now() + BUCKET_SEEN_MS;
      return exists;
    } catch (e) {
      throw this.#explain(e, "check the bucket");
    }
  }

  /** Races `promise` (which must include reading the answer's body) against the request timeout. */
  #withTimeout<T>(promise: Promise<T>): Promise<T> {
    return withTimeout(promise, this.#timeoutMs);
  }

  /** ListObjectsV2, one page (1000 keys) at a time; `startAfter` seeks with S3's `start-after`. */
  async *list(prefix: string, startAfter?: string): AsyncIterable<ListedObject> {
    let token = "";
    while (true) {
      let xml: string;
      try {
        xml = await this.#withTimeout(
          this.#client.makeRequest({
            method: "GET",
            objectName: "",
            query: {
              "list-type": "2",
              prefix: this.#fullKey(prefix),
              "max-keys": "1000",
              ...(token ? { "continuation-token": token } : {}),
              ...(startAfter && !token ? { "start-after": this.#fullKey(startAfter) } : {}),
            },
            returnBody: true,
          }).then((response) => response.text()),
        );
      } catch (e) {
        throw this.#explain(e, `list ${this.url}`);
      }
      const page = parseListPage(xml);
      for (const { key, size } of page.objects) yield { key: key.slice(this.#prefix.length), size };
      if (!page.next) return;
      token = page.next;
    }
  }

  async delete(key: string): Promise<void> {
    let response: Response;
    try {
      const sent = await this.#send("DELETE", key);
      sent.done();
      response = sent.response;
    } catch (e) {
      throw this.#explain(e, `delete ${key}`);
    }
    if (response.ok || response.status === 404) {
      await response.body?.cancel();
      return;
    }
    throw this.#explain(await this.#serverError(response), `delete ${key}`);
  }

  /** One multi-object delete (POST ?delete, Content-MD5) of up to 1000 keys; see multi_delete.ts. */
  async deleteMany(keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    const what = `delete ${keys.length} object(s) (${keys[0]} ...)`;
    const body = deleteRequestXml(keys.map((k) => this.#fullKey(k)));
    let xml: string;
    try {
      xml = await this.#withTimeout(
        this.#client.makeRequest({
          method: "POST",
          objectName: "",
          query: { delete: "" },
          headers: new Headers({ "content-md5": contentMd5(body), "content-type": "application/xml" }),
          payload: body,
          returnBody: true,
        }).then((response) => response.text()),
      );
    } catch (e) {
      throw this.#explain(e, what);
    }
    const failed = deleteErrors(xml).filter((e) => e.code !== "NoSuchKey");
    if (failed.length) {
      const first = failed[0];
      const transient = failed.every((e) => e.code === "InternalError" || e.code === "SlowDown");
      throw storageError(
        `S3 could not ${what}: ${failed.length} failed, e.g. ${decodeXml(first.key)}: ${first.code} ${
          redact(decodeXml(first.message))
        }`,
        undefined,
        transient,
      );
    }
  }
}
