/**
 * Retries for store calls: bounded exponential backoff with full jitter, only for failures marked
 * retryable (network errors, timeouts, 5xx, throttling), never for access denied, missing objects
 * or corruption. An outage is logged once when it starts and once when it ends, not per attempt.
 * @module
 */
import { WalsyncError } from "../errors.ts";
import * as log from "../log.ts";
import type { ByteSource } from "./source.ts";
import type { ListedObject, ObjectData, ObjectInfo, Store, WriteCondition } from "./store.ts";

/** How hard to try. */
export interface RetryPolicy {
  /** Total attempts per call (1 = no retry). */
  attempts: number;
  /** First backoff, doubled each time up to `maxDelayMs`; the actual wait is random in [0, backoff]. */
  baseDelayMs: number;
  maxDelayMs: number;
}

/** The default for one-shot commands: about 15 s of trying in the worst case. */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 6, baseDelayMs: 250, maxDelayMs: 8_000 };

/** Whether an error may go away if the same call is made again. */
export function isRetryable(e: unknown): boolean {
  return e instanceof WalsyncError && e.retryable;
}

/** Keys per listing page (S3's maximum): the unit a listing is retried in. */
const LIST_PAGE = 1000;

/** A {@link Store} that retries the retryable failures of another one. */
export class RetryingStore implements Store {
  readonly url: string;
  #outageSince: number | null = null;
  #failedCalls = 0;
  /** Called once when the store answers again after an outage. */
  readonly #reachableListeners = new Set<() => void>();

  constructor(readonly inner: Store, readonly policy: RetryPolicy = DEFAULT_RETRY) {
    this.url = inner.url;
  }

  /** True while the last call to the store failed after all its attempts. */
  get inOutage(): boolean {
    return this.#outageSince !== null;
  }

  /**
   * Calls `listener` whenever the store answers again after an outage (any call of any database), so
   * that everything waiting out a backoff can try again at once instead of each finding out on its
   * own schedule. Returns the function that unsubscribes.
   */
  onReachable(listener: () => void): () => void {
    this.#reachableListeners.add(listener);
    return () => this.#reachableListeners.delete(listener);
  }

  async #call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    let backoff = this.policy.baseDelayMs;
    for (let attempt = 1;; attempt++) {
      try {
        const result = await fn();
        if (this.#outageSince !== null) {
          const seconds = ((Date.now() - this.#outageSince) / 1000).toFixed(1);
          log.info(
            `store ${this.url} is reachable again after ${seconds} s (${this.#failedCalls} call(s) had failed)`,
          );
          this.#outageSince = null;
          this.#failedCalls = 0;
          for (const listener of [...this.#reachableListeners]) listener();
        }
        return result;
      } catch (e) {
        if (!isRetryable(e)) throw e;
        if (attempt >= this.policy.attempts) {
          this.#failedCalls++;
          if (this.#outageSince === null) {
            this.#outageSince = Date.now();
            log.warn(
              `store ${this.url} is failing (${what}): ${(e as Error).message}; retrying with backoff`,
            );
          }
          throw e;
        }
        log.debug(`${what}: attempt ${attempt} failed, retrying: ${(e as Error).message}`);
        await this.#pause(Math.random() * backoff);
        backoff = Math.min(backoff * 2, this.policy.maxDelayMs);
      }
    }
  }

  /** Waits `ms` between two attempts, or less if the store answers another call meanwhile. */
  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        unsubscribe();
        resolve();
      };
      const timer = setTimeout(done, ms);
      const unsubscribe = this.onReachable(done);
    });
  }

  usesContentMd5(size: number): boolean {
    return this.inner.usesContentMd5?.(size) ?? true;
  }

  put(key: string, body: ByteSource, metadata: Record<string, string>, contentMd5?: string): Promise<void> {
    return this.#call(`upload ${key}`, () => this.inner.put(key, body, metadata, contentMd5));
  }

  putSmall(key: string, body: Uint8Array, metadata: Record<string, string>, condition: WriteCondition) {
    return this.#call(`write ${key}`, () => this.inner.putSmall(key, body, metadata, condition));
  }

  /** Retries until the response starts; a failure while reading the body is the caller's to handle. */
  get(key: string): Promise<ObjectData> {
    return this.#call(`download ${key}`, () => this.inner.get(key));
  }

  head(key: string): Promise<ObjectInfo | null> {
    return this.#call(`read metadata of ${key}`, () => this.inner.head(key));
  }

  /**
   * Streams the listing a page at a time; a page that fails is retried from the last key yielded
   * (a start-after seek), so nothing is listed twice and the whole listing is never held.
   */
  async *list(prefix: string, startAfter?: string): AsyncIterable<ListedObject> {
    let cursor = startAfter;
    while (true) {
      const page = await this.#call(`list ${prefix || "/"}`, async () => {
        const entries: ListedObject[] = [];
        for await (const entry of this.inner.list(prefix, cursor)) {
          entries.push(entry);
          if (entries.length === LIST_PAGE) break;
        }
        return entries;
      });
      yield* page;
      if (page.length < LIST_PAGE) return;
      cursor = page.at(-1)!.key;
    }
  }

  abortIncompleteUploads(prefix: string): Promise<number> {
    const inner = this.inner;
    if (!inner.abortIncompleteUploads) return Promise.resolve(0);
    return this.#call(`clean up uploads under ${prefix}`, () => inner.abortIncompleteUploads!(prefix));
  }

  delete(key: string): Promise<void> {
    return this.#call(`delete ${key}`, () => this.inner.delete(key));
  }

  /** Retried as a whole: deleting an object twice is harmless. */
  deleteMany(keys: string[]): Promise<void> {
    if (keys.length === 0) return Promise.resolve();
    return this.#call(`delete ${keys.length} object(s) from ${keys[0]}`, () => this.inner.deleteMany(keys));
  }
}
