/**
 * The multipart exchange of the S3 store (src/storage/s3.ts): initiate, one streamed PUT per part,
 * complete, and abort on any failure so no parts are left behind (docs/design.md §10). The part
 * rules and the quirks of real servers are in src/storage/multipart.ts.
 * @module
 */
import type { S3Client } from "@bradenmacdonald/s3-lite-client";
import { S3Errors } from "@bradenmacdonald/s3-lite-client";
import { storageError } from "../errors.ts";
import { redact } from "../redact.ts";
import { streamingPut } from "./http_put.ts";
import { completionXml, multipartEtag, splitIntoParts, uploadIdOf } from "./multipart.ts";
import { decodeXml, TimeoutError, unquote } from "./s3_http.ts";
import type { ByteSource } from "./source.ts";

/** What the multipart calls need of the store: its client and its request timeout. */
export interface S3Exchange {
  client: S3Client;
  timeoutMs: number;
  /** Races a call (including the read of its answer) against the request timeout. */
  withTimeout<T>(promise: Promise<T>): Promise<T>;
}

/**
 * Uploads `body` to `objectName` in parts of `partSize` bytes, each streamed as it is read. Returns
 * the multipart ETag the bytes sent imply (for the caller's HEAD to compare). Aborts the upload and
 * rethrows on any failure.
 */
export async function uploadInParts(
  x: S3Exchange,
  objectName: string,
  body: ByteSource,
  headers: Headers,
  partSize: number,
): Promise<string> {
  const initiated = await x.withTimeout(
    x.client.makeRequest({ method: "POST", objectName, query: "uploads", headers, returnBody: true })
      .then((response) => response.text()),
  );
  const uploadId = uploadIdOf(initiated);
  if (!uploadId) {
    throw storageError(`the server did not start a multipart upload for ${objectName}`, undefined, true);
  }
  try {
    const etags: string[] = [];
    const md5s: Uint8Array[] = [];
    let number = 0;
    for (const part of splitIntoParts(body, partSize)) {
      number++;
      const url = await x.client.getPresignedUrl("PUT", objectName, {
        parameters: { partNumber: String(number), uploadId },
        expirySeconds: 3600,
      });
      const response = await streamingPut(url, {}, part, x.timeoutMs).catch((e) => {
        throw (e as Error).message === "timeout" ? new TimeoutError("timeout") : e;
      });
      if (response.status !== 200) {
        throw await S3Errors.parseServerError(new Response(response.text, { status: response.status }));
      }
      md5s.push(part.md5());
      etags.push(unquote(response.headers.get("etag") ?? ""));
    }
    const answer = await x.withTimeout(
      x.client.makeRequest({
        method: "POST",
        objectName,
        query: `uploadId=${encodeURIComponent(uploadId)}`,
        payload: completionXml(etags),
        returnBody: true,
      }).then((response) => response.text()),
    );
    // The answer's ETag is not trusted (RGW leaves it empty), but an <Error> in a 200 is a failure.
    if (/<Error>/.test(answer)) {
      throw storageError(
        `completing the multipart upload of ${objectName} failed: ${redact(answer.slice(0, 300))}`,
        undefined,
        true,
      );
    }
    return multipartEtag(md5s);
  } catch (e) {
    await abortUpload(x, objectName, uploadId);
    throw e;
  }
}

/** Aborts a multipart upload; a failure is ignored (it expires by the bucket's lifecycle rules, if any). */
export async function abortUpload(x: S3Exchange, objectName: string, uploadId: string): Promise<void> {
  try {
    await x.withTimeout(x.client.makeRequest({
      method: "DELETE",
      objectName,
      query: `uploadId=${encodeURIComponent(uploadId)}`,
      statusCode: 204,
    }));
  } catch { /* see above */ }
}

/**
 * Aborts the incomplete multipart uploads under `prefix` (the full key prefix); returns how many.
 * Throws if they cannot be listed; a failed abort is ignored (see {@link abortUpload}).
 */
export async function abortIncomplete(x: S3Exchange, prefix: string): Promise<number> {
  const xml = await x.withTimeout(
    x.client.makeRequest({ method: "GET", objectName: "", query: { uploads: "", prefix }, returnBody: true })
      .then((response) => response.text()),
  );
  let aborted = 0;
  for (
    const match of xml.matchAll(/<Upload>[\s\S]*?<Key>([^<]+)<\/Key>[\s\S]*?<UploadId>([^<]+)<\/UploadId>/g)
  ) {
    await abortUpload(x, decodeXml(match[1]), decodeXml(match[2]));
    aborted++;
  }
  return aborted;
}
