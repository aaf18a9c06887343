/**
 * Verified uploads: an object counts as stored only when a HEAD shows the expected size and the
 * SHA-256 of the bytes walsync meant to store (docs/design.md §4.1, §9). Snapshots and segments (the objects
 * that carry a walsync format in their metadata) are encoded with the store's codec first
 * (compression, encryption); other objects (state.json) are stored as they are.
 * @module
 */
import { createHash } from "node:crypto";
import { PLAIN_CODEC } from "../codec/codec.ts";
import { encodeObject } from "../codec/encode.ts";
import { corruptError, WalsyncError } from "../errors.ts";
import { newSha256 } from "../hash.ts";
import { FORMAT } from "../metadata.ts";
import { type ByteSource, observedSource } from "./source.ts";
import type { Store } from "./store.ts";

export { type ByteSource, bytesSource } from "./source.ts";

/** The outcome of a verified upload. */
export interface UploadResult {
  key: string;
  /** Size and SHA-256 of the stored bytes. */
  size: number;
  sha256: string;
  /** Size and SHA-256 of the content before encoding (equal to the stored ones when stored as is). */
  contentSize: number;
  contentSha256: string;
}

/** Digests of a whole source, computed in one pass (both unless `want` leaves one out: then ""). */
export async function digestSource(
  source: ByteSource,
  want: { sha256: boolean; md5: boolean } = { sha256: true, md5: true },
): Promise<{ sha256: string; md5: string; size: number }> {
  const sha = want.sha256 ? newSha256() : null;
  const md5 = want.md5 ? createHash("md5") : null;
  let size = 0;
  for await (const chunk of source.chunks()) {
    sha?.update(chunk);
    md5?.update(chunk);
    size += chunk.byteLength;
  }
  return { sha256: sha?.digest("hex") ?? "", md5: md5?.digest("base64") ?? "", size };
}

/**
 * Uploads `source` under `key` with `metadata` plus `sha256` of the stored bytes, then confirms it
 * with a HEAD. A snapshot or segment is encoded with `store.codec` first (its codec fields are
 * added to the metadata); a retry with the same content stores the same bytes.
 */
export async function uploadVerified(
  store: Store,
  key: string,
  source: ByteSource,
  metadata: Record<string, string> = {},
): Promise<UploadResult> {
  if (metadata.format !== FORMAT) {
    const stored = await uploadAsIs(store, key, source, () => metadata);
    return { ...stored, contentSize: stored.size, contentSha256: stored.sha256 };
  }
  const encoded = await encodeObject(store.codec ?? PLAIN_CODEC, key, source);
  try {
    const stored = await uploadAsIs(store, key, encoded.source, (sha256) => ({
      ...metadata,
      ...encoded.metadata(sha256),
    }), encoded.storedSha256);
    return { ...stored, contentSize: source.size, contentSha256: encoded.contentSha256 ?? stored.sha256 };
  } finally {
    await encoded.dispose();
  }
}

/**
 * Uploads `source` as it is, with `metadataFor(sha256)` plus `sha256`, and confirms it with a HEAD.
 *
 * The content is read twice: once to compute the digests (S3 needs the metadata, and the
 * Content-MD5 the server checks the body against, before the body) and once to upload; the second
 * pass is hashed as well, so content that changed between the passes is caught instead of being
 * stored under a wrong checksum. The first pass is left out when the encoder already hashed the
 * bytes it wrote (`knownSha256`) and the store has no use for a Content-MD5 of this size (a
 * multipart upload, a directory); the MD5 alone is left out when only it is not needed.
 */
async function uploadAsIs(
  store: Store,
  key: string,
  source: ByteSource,
  metadataFor: (sha256: string) => Record<string, string>,
  knownSha256: string | null = null,
): Promise<{ key: string; size: number; sha256: string }> {
  const md5Needed = store.usesContentMd5?.(source.size) ?? true;
  const digests = knownSha256 !== null && !md5Needed
    ? { sha256: knownSha256, md5: "", size: source.size }
    : await digestSource(source, { sha256: knownSha256 === null, md5: md5Needed });
  if (digests.size !== source.size) {
    throw new WalsyncError(`${key}: content is ${digests.size} bytes, expected ${source.size}`);
  }
  digests.sha256 = knownSha256 ?? digests.sha256;
  const sentHash = newSha256();
  let sentBytes = 0;
  const sending = observedSource(source, (chunk) => {
    sentHash.update(chunk);
    sentBytes += chunk.byteLength;
  });
  await store.put(
    key,
    sending,
    { ...metadataFor(digests.sha256), sha256: digests.sha256 },
    digests.md5 || undefined,
  );
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
