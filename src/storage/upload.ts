/**
 * Verified uploads: an object counts as stored only when a HEAD shows the expected size and the
 * SHA-256 of the content walsync meant to store (DESIGN.md §2.3, §7).
 * @module
 */
import { corruptError, WalsyncError } from "../errors.ts";
import { hashingTransform, newSha256, sha256OfStream } from "../hash.ts";
import type { Store } from "./store.ts";

/** Content that can be streamed more than once (a file range, a database image under a read lock). */
export interface ByteSource {
  readonly size: number;
  /** Opens a fresh stream over the whole content; every call yields the same bytes. */
  stream(): ReadableStream<Uint8Array>;
}

/** A {@link ByteSource} over bytes already in memory (small objects only). */
export function bytesSource(bytes: Uint8Array): ByteSource {
  return {
    size: bytes.byteLength,
    stream: () =>
      new ReadableStream({
        start(controller) {
          controller.enqueue(bytes);
          controller.close();
        },
      }),
  };
}

/** The outcome of a verified upload. */
export interface UploadResult {
  key: string;
  size: number;
  sha256: string;
}

/**
 * Uploads `source` under `key` with `metadata` plus `sha256`, then confirms it with a HEAD.
 *
 * The content is read twice: once to compute the SHA-256 (which must be sent as metadata before
 * the body) and once to upload; the second pass is hashed as well, so content that changed
 * between the passes is caught instead of being stored under a wrong checksum.
 */
export async function uploadVerified(
  store: Store,
  key: string,
  source: ByteSource,
  metadata: Record<string, string> = {},
): Promise<UploadResult> {
  const sha256 = await sha256OfStream(source.stream());
  const sentHash = newSha256();
  const sent = { bytes: 0 };
  await store.put(key, source.stream().pipeThrough(hashingTransform(sentHash, sent)), source.size, {
    ...metadata,
    sha256,
  });
  const sentSha = sentHash.digest("hex");
  if (sentSha !== sha256 || sent.bytes !== source.size) {
    await store.delete(key).catch(() => {});
    throw new WalsyncError(`content changed while uploading ${store.url}/${key}; the object was removed`);
  }
  const head = await store.head(key);
  if (!head) {
    throw corruptError(`upload of ${key} to ${store.url} reported success but the object is missing`);
  }
  if (head.size !== source.size || head.metadata.sha256 !== sha256) {
    throw corruptError(
      `upload of ${key} to ${store.url} could not be confirmed: stored size ${head.size} (expected ${source.size}), ` +
        `sha256 ${head.metadata.sha256 ?? "missing"} (expected ${sha256})`,
    );
  }
  return { key, size: source.size, sha256 };
}
