/**
 * Streaming SHA-256 (node:crypto streams; WebCrypto's digest cannot stream).
 * @module
 */
import { createHash, type Hash } from "node:crypto";

/** Creates an incremental SHA-256 hasher. */
export function newSha256(): Hash {
  return createHash("sha256");
}

/** Hashes a whole stream without holding it in memory; returns lowercase hex. */
export async function sha256OfStream(stream: ReadableStream<Uint8Array>): Promise<string> {
  const hash = newSha256();
  for await (const chunk of stream) hash.update(chunk);
  return hash.digest("hex");
}

/** SHA-256 of bytes in memory, lowercase hex. */
export function sha256Hex(bytes: Uint8Array): string {
  return newSha256().update(bytes).digest("hex");
}

/**
 * A pass-through stream that feeds every chunk to `hash` and counts bytes, for verifying what
 * was actually sent or received.
 */
export function hashingTransform(
  hash: Hash,
  counter: { bytes: number },
): TransformStream<Uint8Array, Uint8Array> {
  return new TransformStream({
    transform(chunk, controller) {
      hash.update(chunk);
      counter.bytes += chunk.byteLength;
      controller.enqueue(chunk);
    },
  });
}
