/**
 * The storage-backend interface: the five operations walsync needs from any object store.
 * Implementations: {@link ../storage/s3.ts} (S3-compatible) and {@link ../storage/file.ts} (a local
 * directory). Keys are relative to the backup location (bucket prefix or directory) and use "/".
 * Metadata keys are given without the `x-amz-meta-` prefix and in lower case (e.g. `sha256`).
 * @module
 */
import type { ObjectCodec } from "../codec/codec.ts";
import type { ByteSource } from "./source.ts";

/** The most keys one {@link Store.deleteMany} call takes (S3's multi-object delete limit). */
export const MAX_DELETE_BATCH = 1000;

/** What a HEAD returns. */
export interface ObjectInfo {
  key: string;
  size: number;
  /** User metadata, keys lower case without the `x-amz-meta-` prefix. */
  metadata: Record<string, string>;
  /** The object's version tag (unquoted), for conditional writes. */
  etag?: string;
}

/** A condition for {@link Store.putSmall}: create only, or replace only this version. */
export type WriteCondition = { ifNoneMatch: "*" } | { ifMatch: string };

/** One entry of a listing. */
export interface ListedObject {
  key: string;
  size: number;
}

/** What a GET returns: the body as a stream plus what a HEAD would have said. */
export interface ObjectData extends ObjectInfo {
  body: ReadableStream<Uint8Array>;
}

/** A narrow object-store interface (put, get, head, list, delete). */
export interface Store {
  /** The backup URL this store serves, for messages. Never contains credentials. */
  readonly url: string;
  /**
   * How snapshots and segments are encoded when uploaded, and the key to decode them (set by
   * openStore; none: stored as they are, encrypted objects unreadable).
   */
  codec?: ObjectCodec;
  /**
   * Stores `body` under `key` with `metadata`, replacing any object there. `contentMd5` (base64)
   * lets the server reject a body that differs from what was hashed. Rejects if the body does not
   * have exactly `body.size` bytes.
   */
  put(key: string, body: ByteSource, metadata: Record<string, string>, contentMd5?: string): Promise<void>;
  /**
   * Whether put() of a body of `size` bytes sends the `contentMd5` it is given (S3: a single PUT;
   * a multipart upload checks each part's MD5 instead, a directory checks nothing), so that a caller
   * computes that digest only when it is used. Absent: assume it does.
   */
  usesContentMd5?(size: number): boolean;
  /** Streams an object. Throws a not-found WalsyncError if it does not exist. */
  get(key: string): Promise<ObjectData>;
  /** Metadata of an object, or null if it does not exist. */
  head(key: string): Promise<ObjectInfo | null>;
  /**
   * The objects whose key starts with `prefix`, in lexicographic key order, streamed; with
   * `startAfter`, only keys after it (a seek, like S3's `start-after`, without reading the keys before).
   */
  list(prefix: string, startAfter?: string): AsyncIterable<ListedObject>;
  /**
   * Writes a small object (kept in memory) only if `condition` holds: atomically, so that of two
   * writers racing for the same condition exactly one wins. Returns the new etag, or null when
   * the condition failed (the object exists / changed).
   */
  putSmall(
    key: string,
    body: Uint8Array,
    metadata: Record<string, string>,
    condition: WriteCondition,
  ): Promise<string | null>;
  /**
   * Cleans up incomplete multipart uploads under `prefix` (left by a process killed mid-upload);
   * returns how many. Optional: stores without multipart uploads do not have it.
   */
  abortIncompleteUploads?(prefix: string): Promise<number>;
  /** Deletes an object; deleting a missing object is not an error. */
  delete(key: string): Promise<void>;
  /**
   * Deletes objects (at most {@link MAX_DELETE_BATCH} keys) in as few requests as the store allows
   * (S3: one multi-object delete); missing objects are not an error. Rejects if any key could not be
   * deleted (it may then be retried: deleting twice is harmless).
   */
  deleteMany(keys: string[]): Promise<void>;
}
