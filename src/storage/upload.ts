/**
 * Verified uploads: an object counts as stored only when a HEAD shows the expected size and the
 * SHA-256 of the content walsync meant to store (DESIGN.md §2.3, §7).
 * @module
 */
import { createHash } from "node:crypto";
import { corruptError, WalsyncError } from "../errors.ts";
import { newSha256 } from "../hash.ts";
import { type ByteSource, observedSource } from "./source.ts";
import type { Store } from "./store.ts";

export { type ByteSource, bytesSource } from "./source.ts";

/** The outcome of a verified upload. */
export interface UploadResult {
  key: string;
  size: number;
  sha256: string;
}

/** Digests of a whole source, computed in one pass. */
export async function digestSource(
  source: ByteSource,
): Promise<{ sha256: string; md5: string; size: number }> {
  const sha = newSha256();
  const md5 = createHash("md5");
  let size = 0;
  for await (const chunk of source.chunks()) {
    sha.update(chunk);
    md5.update(chunk);
    size += chunk.byteLength;
  }
  return { sha256: sha.digest("hex"), md5: md5.digest("base64"), size };
}

/**
 * Uploads `source` under `key` with `metadata` plus `sha256`, then confirms it with a HEAD.
 *
 * The content is read twice: once to compute the digests (S3 needs the metadata, and the
 * Content-MD5 the server checks the body against, before the body) and once to upload; the second
 * pass is hashed as well, so content that changed between the passes is caught instead of being
 * stored under a wrong checksum.
 */
export async function uploadVerified(
  store: Store,
  key: string,
  source: ByteSource,
  metadata: Record<string, string> = {},
): Promise<UploadResult> {
  const digests = await digestSource(source);
  if (digests.size !== source.size) {
    throw new WalsyncError(`${key}: content is ${digests.size} bytes, expected ${source.size}`);
  }
  const sentHash = newSha256();
  let sentBytes = 0;
  const sending = observedSource(source, (chunk) => {
    sentHash.update(chunk);
    sentBytes += chunk.byteLength;
  });
  await store.put(key, sending, { ...metadata, sha256: digests.sha256 }, digests.md5);
  if (sentHash.digest("hex") !== digests.sha256 || sentBytes !== source.size) {
    await store.delete(key).catch(() => {});
    throw new WalsyncError(`content changed while uploading ${store.url}/${key}; the object was removed`);
  }
  const head = await store.head(key);
  if (!head) {
    throw corruptError(`upload of ${key} to ${store.url} reported success but the object is missing`);
  }
  if (head.size !== source.size || head.metadata.sha256 !== digests.sha256) {
    throw corruptError(
      `upload of ${key} to ${store.url} could not be confirmed: stored size ${head.size} (expected ${source.size}), ` +
        `sha256 ${head.metadata.sha256 ?? "missing"} (expected ${digests.sha256})`,
    );
  }
  return { key, size: source.size, sha256: digests.sha256 };
}
