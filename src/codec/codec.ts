/**
 * How snapshots and segments are stored: the codec configuration a store carries, and the codec
 * fields of an object's metadata (docs/design.md §4.2).
 *
 * Metadata of every snapshot and segment (format walsync-2):
 * - `sha256`: SHA-256 of the STORED bytes (any client can check an object without keys);
 * - `stored-length`: their size;
 * - `content-sha256`, `content-length`: digest and size of the decoded content (WAL frames or the
 *   database image), checked after decoding;
 * - `compression`: `none` | `zstd`; `encryption`: `none` | `aes-256-gcm`, with `key-id`.
 * Compression is applied first, then encryption.
 * @module
 */
import type { EncryptionKey } from "./key.ts";

/** Compression algorithms walsync writes and reads. */
export const COMPRESSIONS = ["none", "zstd"] as const;
/** A compression algorithm. */
export type Compression = typeof COMPRESSIONS[number];
/** The encryption algorithm name in metadata. */
export const AES_GCM = "aes-256-gcm";

/** The codec configuration of a store: how to write objects, and the key to read them. */
export interface ObjectCodec {
  compression: Compression;
  /** zstd level of new objects (src/codec/zstd.ts; default 3); readers do not need it. */
  level?: number;
  /** Encrypts what is written and decrypts what is read; null: no encryption. */
  key: EncryptionKey | null;
}

/** Objects stored as they are (what a store without a codec does). */
export const PLAIN_CODEC: ObjectCodec = { compression: "none", key: null };

/** The codec fields of one object's metadata, decoded. */
export interface StoredForm {
  compression: Compression;
  encrypted: boolean;
  keyId: string | null;
  /** SHA-256 and size of the stored bytes. */
  sha256: string;
  storedLength: number;
  /** SHA-256 and size of the decoded content. */
  contentSha256: string;
  contentLength: number;
}

const SHA = /^[0-9a-f]{64}$/;

function count(meta: Record<string, string>, key: string): number {
  const value = meta[key];
  if (value === undefined || !/^\d+$/.test(value)) throw new Error(`metadata ${key} missing or not a number`);
  return Number(value);
}

/** Decodes the codec fields of `meta`; throws an Error saying what is missing or unknown. */
export function storedForm(meta: Record<string, string>): StoredForm {
  const compression = meta.compression as Compression;
  if (!COMPRESSIONS.includes(compression)) {
    throw new Error(`unknown compression "${meta.compression ?? "(none)"}"`);
  }
  const encryption = meta.encryption ?? "(none)";
  if (encryption !== "none" && encryption !== AES_GCM) throw new Error(`unknown encryption "${encryption}"`);
  const encrypted = encryption === AES_GCM;
  const keyId = meta["key-id"] ?? null;
  if (encrypted && !/^[0-9a-f]{16}$/.test(keyId ?? "")) throw new Error(`bad key-id "${keyId ?? "(none)"}"`);
  for (const field of ["sha256", "content-sha256"]) {
    if (!SHA.test(meta[field] ?? "")) throw new Error(`metadata ${field} missing or not a SHA-256`);
  }
  const form: StoredForm = {
    compression,
    encrypted,
    keyId: encrypted ? keyId : null,
    sha256: meta.sha256,
    storedLength: count(meta, "stored-length"),
    contentSha256: meta["content-sha256"],
    contentLength: count(meta, "content-length"),
  };
  if (
    !encrypted && compression === "none" &&
    (form.sha256 !== form.contentSha256 || form.storedLength !== form.contentLength)
  ) {
    throw new Error("stored as is, but its stored and content digests or sizes differ");
  }
  return form;
}

/** The codec fields to store for an object (`sha256` is added by the upload). */
export function formMetadata(form: Omit<StoredForm, "sha256">): Record<string, string> {
  return {
    compression: form.compression,
    encryption: form.encrypted ? AES_GCM : "none",
    ...(form.encrypted ? { "key-id": form.keyId! } : {}),
    "stored-length": String(form.storedLength),
    "content-sha256": form.contentSha256,
    "content-length": String(form.contentLength),
  };
}
