/**
 * The client-side encryption key: 32 bytes given as base64 in `WALSYNC_ENCRYPTION_KEY` or in a file
 * (`--encryption-key-file`). The bytes never leave this module except into node:crypto; the key
 * prints as its public key id only, so a log line or a JSON dump cannot leak it.
 * @module
 */
import { createHmac } from "node:crypto";
import { usageError } from "../errors.ts";
import * as log from "../log.ts";

/** Length of an AES-256 key. */
export const KEY_BYTES = 32;

/** A 32-byte key with its public fingerprint (the key id stored in each encrypted object's metadata). */
export class EncryptionKey {
  readonly #bytes: Uint8Array;
  /**
   * Public fingerprint: the first 8 bytes of HMAC-SHA256(key, "walsync key id"), hex. It tells a
   * missing or wrong key apart before any download, and reveals nothing about the key.
   */
  readonly id: string;

  constructor(bytes: Uint8Array) {
    if (bytes.byteLength !== KEY_BYTES) throw new Error(`an encryption key has ${KEY_BYTES} bytes`);
    this.#bytes = bytes.slice();
    this.id = this.hmac("walsync key id").subarray(0, 8).toString("hex");
  }

  /** HMAC-SHA256 under the key of the given parts (strings as UTF-8), each followed by a zero byte. */
  hmac(...parts: (string | Uint8Array)[]): Buffer {
    const mac = createHmac("sha256", this.#bytes);
    parts.forEach((part, i) => {
      mac.update(part);
      if (i < parts.length - 1) mac.update(new Uint8Array([0]));
    });
    return mac.digest();
  }

  toString(): string {
    return `EncryptionKey(id ${this.id})`;
  }

  toJSON(): string {
    return this.toString();
  }

  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }
}

/** Decodes strict base64 (no whitespace inside); null if it is not base64. */
function fromBase64(text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text) || text.length % 4 !== 0) return null;
  try {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

/** Parses base64 text of 32 bytes; `where` names its origin in the error (never the text). */
export function parseKey(text: string, where: string): EncryptionKey {
  const bytes = fromBase64(text.trim());
  if (!bytes) throw usageError(`${where}: not base64 (expected the base64 of ${KEY_BYTES} random bytes)`);
  if (bytes.byteLength !== KEY_BYTES) {
    throw usageError(`${where}: ${bytes.byteLength} bytes after base64 decoding, expected ${KEY_BYTES}`);
  }
  return new EncryptionKey(bytes);
}

/**
 * Reads a key file: base64 text (e.g. `head -c 32 /dev/urandom | base64`) or exactly 32 raw bytes.
 * Warns when other users may read it.
 */
export function readKeyFile(path: string): EncryptionKey {
  let bytes: Uint8Array;
  try {
    bytes = Deno.readFileSync(path);
    const mode = Deno.statSync(path).mode;
    if (mode !== null && (mode & 0o077) !== 0) {
      log.warn(`encryption key file ${path} can be read by other users (mode ${(mode & 0o777).toString(8)})`);
    }
  } catch (e) {
    throw usageError(`cannot read encryption key file ${path}: ${(e as Error).message}`);
  }
  if (bytes.byteLength === KEY_BYTES) return new EncryptionKey(bytes);
  return parseKey(new TextDecoder().decode(bytes), `encryption key file ${path}`);
}

/**
 * The key to use: `--encryption-key-file` if given, else `WALSYNC_ENCRYPTION_KEY`, else none.
 * @throws WalsyncError (usage, exit 2) for an unreadable or malformed key.
 */
export function loadEncryptionKey(
  keyFile: string | undefined,
  env: (name: string) => string | undefined,
): EncryptionKey | null {
  if (keyFile) return readKeyFile(keyFile);
  const text = env("WALSYNC_ENCRYPTION_KEY");
  return text ? parseKey(text, "WALSYNC_ENCRYPTION_KEY") : null;
}
