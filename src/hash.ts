/**
 * Streaming SHA-256 (node:crypto: it can hash incrementally; WebCrypto's digest cannot).
 * @module
 */
import { createHash, type Hash } from "node:crypto";

/** Creates an incremental SHA-256 hasher. */
export function newSha256(): Hash {
  return createHash("sha256");
}

/** SHA-256 of bytes in memory, lowercase hex. */
export function sha256Hex(bytes: Uint8Array): string {
  return newSha256().update(bytes).digest("hex");
}
