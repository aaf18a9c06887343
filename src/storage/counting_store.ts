/**
 * A {@link Store} decorator that counts requests by method and outcome for the metrics
 * (`walsync_store_requests_total`), and per database (the key's first segment) what was shipped
 * and when a request last succeeded or failed. Placed under the retries, so every attempt counts.
 * @module
 */
import { registry } from "../metrics/registry.ts";
import type { ByteSource } from "./source.ts";
import type { ListedObject, ObjectData, ObjectInfo, Store, WriteCondition } from "./store.ts";

const requests = registry.counter(
  "walsync_store_requests_total",
  "Requests to the store by method and outcome.",
);

/** What the store saw for one database (the first segment of the keys). */
export interface DatabaseActivity {
  lastOkAt: number;
  lastFailedAt: number;
  shippedBytes: number;
  shippedObjects: number;
  /** When a snapshot upload last succeeded. */
  lastSnapshotAt: number;
}

/** Activity per database name, for the watch metrics. */
export const activity = new Map<string, DatabaseActivity>();

function activityOf(key: string): DatabaseActivity {
  const name = key.split("/")[0];
  let entry = activity.get(name);
  if (!entry) {
    activity.set(
      name,
      entry = { lastOkAt: 0, lastFailedAt: 0, shippedBytes: 0, shippedObjects: 0, lastSnapshotAt: 0 },
    );
  }
  return entry;
}

function record(method: string, key: string, error: unknown): void {
  const missing = (error as { exitCode?: number } | null)?.exitCode === 3;
  requests.inc({ method, outcome: error === null ? "ok" : missing ? "not_found" : "error" });
  if (error === null || missing) activityOf(key).lastOkAt = Date.now();
  else activityOf(key).lastFailedAt = Date.now();
}

/** Counts the requests of `inner`. */
export class CountingStore implements Store {
  readonly url: string;

  constructor(readonly inner: Store) {
    this.url = inner.url;
  }

  async #count<T>(method: string, key: string, call: () => Promise<T>): Promise<T> {
    try {
      const result = await call();
      record(method, key, null);
      return result;
    } catch (e) {
      record(method, key, e);
      throw e;
    }
  }

  usesContentMd5(size: number): boolean {
    return this.inner.usesContentMd5?.(size) ?? true;
  }

  async put(key: string, body: ByteSource, metadata: Record<string, string>, contentMd5?: string) {
    await this.#count("PUT", key, () => this.inner.put(key, body, metadata, contentMd5));
    const entry = activityOf(key);
    entry.shippedBytes += body.size;
    entry.shippedObjects++;
    if (key.includes("/snapshots/")) entry.lastSnapshotAt = Date.now();
  }

  putSmall(key: string, body: Uint8Array, metadata: Record<string, string>, condition: WriteCondition) {
    return this.#count("PUT", key, () => this.inner.putSmall(key, body, metadata, condition));
  }

  get(key: string): Promise<ObjectData> {
    return this.#count("GET", key, () => this.inner.get(key));
  }

  head(key: string): Promise<ObjectInfo | null> {
    return this.#count("HEAD", key, () => this.inner.head(key));
  }

  /** Streamed; counted when it ends (a listing abandoned half way counts as ok). */
  async *list(prefix: string, startAfter?: string): AsyncIterable<ListedObject> {
    let error: unknown = null;
    try {
      yield* this.inner.list(prefix, startAfter);
    } catch (e) {
      error = e;
      throw e;
    } finally {
      record("LIST", prefix, error);
    }
  }

  abortIncompleteUploads(prefix: string): Promise<number> {
    const inner = this.inner;
    if (!inner.abortIncompleteUploads) return Promise.resolve(0);
    return this.#count("LIST", prefix, () => inner.abortIncompleteUploads!(prefix));
  }

  delete(key: string): Promise<void> {
    return this.#count("DELETE", key, () => this.inner.delete(key));
  }

  /** One request (S3's multi-object delete is a POST). */
  deleteMany(keys: string[]): Promise<void> {
    if (keys.length === 0) return Promise.resolve();
    return this.#count("DELETE_MANY", keys[0], () => this.inner.deleteMany(keys));
  }
}
