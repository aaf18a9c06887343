/**
 * Multipart uploads for large objects, streamed part by part (each part is sent as it is read,
 * never buffered), with the quirks of real servers handled (docs/design.md §10):
 * - Ceph RGW 16 answers CompleteMultipartUpload with an empty <ETag>, moto with a differently named
 *   root element: the answer is not trusted either way; the object counts as stored only when a
 *   HEAD shows it (the caller checks size and sha256), and its ETag is compared with the multipart
 *   ETag computed from the bytes sent (MD5 of the parts' MD5s, "-N"), which proves the server got
 *   exactly those bytes;
 * - AWS may answer 200 with an <Error> document: that is a failure;
 * - on any failure the upload is aborted, so no parts are left behind.
 * @module
 */
import { createHash } from "node:crypto";
import type { ByteSource } from "./source.ts";

/** Parts are at least 5 MiB (S3's minimum, except the last); at most 10,000 parts. */
export const MIN_PART_SIZE = 5 * 1024 * 1024;
const MAX_PARTS = 10_000;

/** Picks a part size: `preferred`, grown if needed so that the object fits in 10,000 parts. */
export function partSizeFor(size: number, preferred: number): number {
  let part = Math.max(preferred, MIN_PART_SIZE);
  while (part * MAX_PARTS < size) part *= 2;
  return part;
}

/**
 * Splits a sequential source into consecutive part sources of `partSize` bytes (the last one
 * shorter). Each part can be read once, in order, and computes its MD5 as it is read.
 */
export function* splitIntoParts(
  source: ByteSource,
  partSize: number,
): Generator<ByteSource & { readonly md5: () => Buffer }, void, undefined> {
  const iterator = source.chunks()[Symbol.asyncIterator]();
  let carry: Uint8Array | null = null;
  for (let offset = 0; offset < source.size; offset += partSize) {
    const size = Math.min(partSize, source.size - offset);
    const md5 = createHash("md5");
    yield {
      size,
      md5: () => md5.digest(),
      async *chunks() {
        let remaining = size;
        while (remaining > 0) {
          let chunk: Uint8Array;
          if (carry) {
            chunk = carry;
            carry = null;
          } else {
            const next = await iterator.next();
            if (next.done) throw new Error("the source ended before its declared size");
            chunk = next.value;
          }
          if (chunk.byteLength > remaining) {
            carry = chunk.subarray(remaining); // still valid: the source is not advanced until we ask
            chunk = chunk.subarray(0, remaining);
          }
          remaining -= chunk.byteLength;
          md5.update(chunk);
          yield chunk;
        }
      },
    };
  }
}

/** The ETag S3 gives a multipart object: MD5 of the concatenated part MD5s, then "-<parts>". */
export function multipartEtag(partMd5s: Uint8Array[]): string {
  const all = createHash("md5");
  for (const md5 of partMd5s) all.update(md5);
  return `${all.digest("hex")}-${partMd5s.length}`;
}

/** The CompleteMultipartUpload request body. */
export function completionXml(etags: string[]): string {
  const parts = etags.map((etag, i) =>
    `<Part><PartNumber>${i + 1}</PartNumber><ETag>"${etag}"</ETag></Part>`
  );
  return `<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${
    parts.join("")
  }</CompleteMultipartUpload>`;
}

/** Extracts the UploadId from an InitiateMultipartUpload answer. */
export function uploadIdOf(xml: string): string | null {
  return /<UploadId>([^<]+)<\/UploadId>/.exec(xml)?.[1] ?? null;
}
