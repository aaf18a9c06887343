/**
 * HTTP details of the S3 store (src/storage/s3.ts): user metadata as `x-amz-meta-*` headers, XML and
 * ETag decoding, a ListObjectsV2 page, and the download body whose deadline moves on with every read.
 * @module
 */
import { storageError } from "../errors.ts";
import { redact } from "../redact.ts";

const META_PREFIX = "x-amz-meta-";

/** Thrown (and recognised) by the S3 store when a request times out. */
export class TimeoutError extends Error {}

/** Decodes the five XML entities S3 uses in keys and messages. */
export function decodeXml(text: string): string {
  return text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&apos;/g, "'")
    .replace(/&amp;/g, "&");
}

/** One page of a ListObjectsV2 answer. */
export interface ListPage {
  /** Full keys (the store's prefix included), decoded, with their sizes (NaN if absent). */
  objects: { key: string; size: number }[];
  /** The continuation token when the listing goes on (decoded), else null. */
  next: string | null;
}

/** Parses one ListObjectsV2 answer (walsync's keys hold no markup, only entities to decode). */
export function parseListPage(xml: string): ListPage {
  const objects = [];
  for (const match of xml.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
    const key = decodeXml(/<Key>([^<]*)<\/Key>/.exec(match[1])?.[1] ?? "");
    const size = Number(/<Size>(\d+)<\/Size>/.exec(match[1])?.[1] ?? "NaN");
    objects.push({ key, size });
  }
  const token = /<IsTruncated>true<\/IsTruncated>/.test(xml)
    ? /<NextContinuationToken>([^<]+)<\/NextContinuationToken>/.exec(xml)?.[1]
    : undefined;
  return { objects, next: token ? decodeXml(token) : null };
}

/**
 * Races `promise` against a timeout of `ms` (for the calls that go through the client). The promise
 * must include reading the answer's body: a connection can hang after the headers.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError("timeout")), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** An ETag without quotes or the weak marker. */
export function unquote(etag: string): string {
  return etag.replace(/^W\//, "").replace(/^"|"$/g, "");
}

/** User metadata as the `x-amz-meta-*` request headers that carry it. */
export function metadataHeaders(metadata: Record<string, string>): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(metadata)) headers[META_PREFIX + k] = v;
  return headers;
}

/** The `x-amz-meta-*` headers of a response as user metadata (names lower-cased, prefix removed). */
export function userMetadata(headers: Headers): Record<string, string> {
  const metadata: Record<string, string> = {};
  headers.forEach((value, name) => {
    const lower = name.toLowerCase();
    if (lower.startsWith(META_PREFIX)) metadata[lower.slice(META_PREFIX.length)] = value;
  });
  return metadata;
}

/**
 * Wraps a response body in a byte stream (BYOB reads still work) that pushes the request's
 * deadline on with every read, so a download fails when the server goes silent, not when it is
 * merely long.
 */
export function watchdogBody(
  body: ReadableStream<Uint8Array>,
  timeoutMs: number,
  touch: () => void,
  done: () => void,
): ReadableStream<Uint8Array> {
  const reader = body.getReader({ mode: "byob" });
  return new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: 64 * 1024,
    async pull(controller) {
      const request = controller.byobRequest!;
      const view = request.view as Uint8Array;
      touch();
      try {
        const { done: finished, value } = await reader.read(
          new Uint8Array(view.buffer, view.byteOffset, view.byteLength),
        );
        if (finished) {
          done();
          controller.close();
          // Our read detached the request's buffer; answer with the (empty) view it came back in.
          if (value) request.respondWithNewView(value);
          else request.respond(0);
          return;
        }
        // The read transferred the buffer: hand the filled view back to the consumer.
        request.respondWithNewView(value!);
      } catch (e) {
        done();
        const why = e instanceof DOMException || e instanceof TimeoutError
          ? `no data for ${timeoutMs} ms`
          : redact((e as Error).message);
        controller.error(storageError(`download interrupted: ${why}`, undefined, true));
      }
    },
    cancel(reason) {
      done();
      return reader.cancel(reason);
    },
  });
}
