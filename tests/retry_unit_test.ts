/**
 * RetryingStore's outage bookkeeping (pure logic, an in-memory store that fails on demand): an
 * outage is entered when a call fails all its attempts, and the first call that succeeds after it
 * wakes every subscriber and every call waiting out a backoff, so a backlog ships soon after the
 * store is back instead of at each waiter's own next attempt.
 */
import assert from "node:assert/strict";
import { storageError } from "../src/errors.ts";
import { RetryingStore } from "../src/storage/retry.ts";
import type { ListedObject, ObjectData, ObjectInfo, Store } from "../src/storage/store.ts";

/** A store whose calls fail (retryable) while `down`. */
class SwitchableStore implements Store {
  readonly url = "mem://test";
  down = false;
  calls = 0;
  #check(): void {
    this.calls++;
    if (this.down) throw storageError("connection refused", undefined, true);
  }
  put(): Promise<void> {
    this.#check();
    return Promise.resolve();
  }
  get(key: string): Promise<ObjectData> {
    this.#check();
    return Promise.resolve({ key, size: 0, metadata: {}, body: new Blob([]).stream() });
  }
  head(): Promise<ObjectInfo | null> {
    this.#check();
    return Promise.resolve(null);
  }
  list(): AsyncIterable<ListedObject> {
    this.#check();
    return (async function* () {})();
  }
  putSmall(): Promise<string | null> {
    this.#check();
    return Promise.resolve("etag");
  }
  delete(): Promise<void> {
    this.#check();
    return Promise.resolve();
  }
  deleteMany(): Promise<void> {
    this.#check();
    return Promise.resolve();
  }
}

Deno.test("RetryingStore: the first success after an outage tells the subscribers, once", async () => {
  const inner = new SwitchableStore();
  const quick = new RetryingStore(inner, { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 });
  inner.down = true;
  await assert.rejects(quick.head("a"));
  assert.equal(quick.inOutage, true, "a call that failed every attempt starts an outage");

  let woken = 0;
  const unsubscribe = quick.onReachable(() => woken++);
  inner.down = false;
  await quick.head("a");
  assert.equal(quick.inOutage, false);
  assert.equal(woken, 1, "subscribers hear once that the store is back");
  await quick.head("a");
  assert.equal(woken, 1, "and not again while nothing failed");
  unsubscribe();
});

Deno.test("RetryingStore: a call waiting out its backoff tries again as soon as another call gets through", async () => {
  const inner = new SwitchableStore();
  const policy = { attempts: 2, baseDelayMs: 1, maxDelayMs: 1 };
  const store = new RetryingStore(inner, policy);
  inner.down = true;
  await assert.rejects(store.head("a"));
  assert.equal(store.inOutage, true);
  // From now on every backoff is a full 20 s.
  policy.baseDelayMs = policy.maxDelayMs = 20_000;
  const random = Math.random;
  Math.random = () => 1;
  try {
    const started = Date.now();
    const waiting = store.head("b"); // its first attempt fails; it then waits 20 s
    await new Promise((r) => setTimeout(r, 50));
    const callsBefore = inner.calls;
    inner.down = false;
    await store.head("c"); // gets through: the outage is over
    await waiting;
    assert.ok(Date.now() - started < 2000, `the waiting call took ${Date.now() - started} ms`);
    assert.equal(inner.calls, callsBefore + 2, "one call for c, one retry for b");
  } finally {
    Math.random = random;
  }
});
