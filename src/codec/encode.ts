/**
 * Encoding an object for upload: zstd, then chunked AES-256-GCM, as the store's codec says
 * (docs/design.md §4.2). The result is a re-readable {@link ByteSource}, so the upload can
 * read it twice (digests first, then the body) as it does for plain objects.
 *
 * Retries must write the same bytes under the same key: encryption takes its 32-byte salt from
 * HMAC(key, object key, SHA-256 of the bytes it encrypts), not from a random source, so a retried
 * upload of the same content is byte-identical, and two different contents never share a salt
 * (each salt selects a fresh AES key, so nonces never repeat under one key).
 * @module
 */
import { openSync, writeSync } from "node:fs";
import { WalsyncError } from "../errors.ts";
import { newSha256 } from "../hash.ts";
import { closeFd, readAt } from "../wal.ts";
import { type ByteSource, bytesSource } from "../storage/source.ts";
import { encryptChunks, encryptedSize } from "./aead.ts";
import { formMetadata, type ObjectCodec } from "./codec.ts";
import { zstdCompress } from "./zstd.ts";

/** Sources up to this size are compressed in memory; larger ones through a temporary file. */
const IN_MEMORY_LIMIT = 1024 * 1024;
/** Read size from the temporary file. */
const READ_CHUNK = 256 * 1024;

/** An encoded object, ready for upload. */
export interface EncodedObject {
  /** The bytes to store. */
  source: ByteSource;
  /** The codec metadata, given the SHA-256 of the stored bytes (computed by the upload). */
  metadata(storedSha256: string): Record<string, string>;
  /** SHA-256 and size of the content (null: equal to the stored bytes', known after the upload). */
  contentSha256: string | null;
  /**
   * SHA-256 of the stored bytes when encoding already computed it (compressed, not encrypted: the
   * bytes written to memory or the temporary file), else null. The upload still hashes what it sends
   * and compares.
   */
  storedSha256: string | null;
  /** Removes the temporary file, if any. */
  dispose(): Promise<void>;
}

/**
 * Encodes `plain` (stored under `objectKey`) with `codec`. Without compression or encryption the
 * source is passed through untouched (one read less). Large compressed content goes through a
 * temporary file (mode 0600 in TMPDIR, unlinked at once), closed by `dispose`.
 */
export async function encodeObject(
  codec: ObjectCodec,
  objectKey: string,
  plain: ByteSource,
): Promise<EncodedObject> {
  const encrypted = codec.key !== null;
  if (codec.compression === "none" && !encrypted) {
    return {
      source: plain,
      contentSha256: null,
      storedSha256: null,
      metadata: (sha256) =>
        formMetadata({
          compression: "none",
          encrypted: false,
          keyId: null,
          storedLength: plain.size,
          contentSha256: sha256,
          contentLength: plain.size,
        }),
      dispose: () => Promise.resolve(),
    };
  }
  const content = newSha256();
  let contentLength = 0;
  const hashedPlain = async function* () {
    for await (const chunk of plain.chunks()) {
      content.update(chunk);
      contentLength += chunk.byteLength;
      yield chunk;
    }
  };
  let inner: ByteSource = plain;
  let innerSha256: string;
  let dispose = () => Promise.resolve();
  if (codec.compression === "zstd") {
    const compressed = await compressToStore(hashedPlain(), plain.size, codec.level);
    inner = compressed.source;
    innerSha256 = compressed.sha256;
    dispose = compressed.dispose;
  } else {
    for await (const _ of hashedPlain()) { /* hash only */ }
    innerSha256 = "";
  }
  try {
    if (contentLength !== plain.size) {
      throw new Error(`${objectKey}: content is ${contentLength} bytes, expected ${plain.size}`);
    }
    const contentSha256 = content.digest("hex");
    if (codec.compression === "none") innerSha256 = contentSha256;
    let source = inner;
    if (codec.key) {
      const key = codec.key;
      const salt = key.hmac("walsync object salt", objectKey, innerSha256);
      source = { size: encryptedSize(inner.size), chunks: () => encryptChunks(key, salt, inner.chunks()) };
    }
    const storedLength = source.size;
    return {
      source,
      contentSha256,
      storedSha256: codec.compression === "zstd" && !codec.key ? innerSha256 : null,
      metadata: () =>
        formMetadata({
          compression: codec.compression,
          encrypted,
          keyId: codec.key?.id ?? null,
          storedLength,
          contentSha256,
          contentLength,
        }),
      dispose,
    };
  } catch (e) {
    await dispose();
    throw e;
  }
}

/** Compresses `input` into memory or a temporary file; returns it as a source with its SHA-256. */
async function compressToStore(
  input: AsyncIterable<Uint8Array>,
  contentSize: number,
  level: number | undefined,
): Promise<{ source: ByteSource; sha256: string; dispose: () => Promise<void> }> {
  const hash = newSha256();
  if (contentSize <= IN_MEMORY_LIMIT) {
    const parts: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of zstdCompress(input, contentSize, level)) {
      hash.update(chunk);
      parts.push(chunk);
      size += chunk.byteLength;
    }
    const bytes = new Uint8Array(size);
    parts.reduce((offset, part) => (bytes.set(part, offset), offset + part.byteLength), 0);
    return { source: bytesSource(bytes), sha256: hash.digest("hex"), dispose: () => Promise.resolve() };
  }
  // The file is unlinked at once: a process killed mid-upload leaves nothing behind.
  const fd = await tempFile((path) => openSync(path, "r+"));
  const dispose = () => Promise.resolve(closeFd(fd));
  try {
    let size = 0;
    for await (const chunk of zstdCompress(input, contentSize, level)) {
      hash.update(chunk);
      await tempFile(() => {
        for (let off = 0; off < chunk.byteLength;) {
          off += writeSync(fd, chunk, off, chunk.byteLength - off, size + off);
        }
      });
      size += chunk.byteLength;
    }
    return { source: descriptorSource(fd, size), sha256: hash.digest("hex"), dispose };
  } catch (e) {
    await dispose();
    throw e;
  }
}

/**
 * Runs `work` on the temporary file (a new one, passed by path and then unlinked, when `work`
 * takes a path); its I/O errors (a full disk, no TMPDIR) become one clear message.
 */
async function tempFile<T>(work: (path: string) => T): Promise<T> {
  let path: string | null = null;
  try {
    if (work.length > 0) path = await Deno.makeTempFile({ prefix: "walsync-zstd-" });
    return work(path ?? "");
  } catch (e) {
    throw new WalsyncError(
      `cannot use a temporary file for compressing (in ${tmpDir()}, see TMPDIR): ${(e as Error).message}`,
    );
  } finally {
    if (path) await Deno.remove(path).catch(() => {});
  }
}

function tmpDir(): string {
  return Deno.env.get("TMPDIR") || "/tmp";
}

/** A {@link ByteSource} over the first `size` bytes of an open descriptor, read by position. */
function descriptorSource(fd: number, size: number): ByteSource {
  return {
    size,
    async *chunks() {
      const buffer = new Uint8Array(Math.min(READ_CHUNK, Math.max(size, 1)));
      for (let done = 0; done < size;) {
        const n = readAt(fd, done, buffer.subarray(0, Math.min(buffer.byteLength, size - done)));
        if (n === 0) throw new Error("the temporary file of a compressed object is shorter than written");
        done += n;
        yield buffer.subarray(0, n);
      }
    },
  };
}
