/**
 * Fetching ahead: while one object is applied, the next ones are already on their way (up to
 * `window` requests in flight), and come out in order. Memory stays bounded: a small object (at
 * most `smallBytes`, as listed) is downloaded whole into memory; a large one only has its metadata
 * read ahead (HEAD), and is downloaded as a stream when its turn comes, so that no idle download
 * waits behind a long one (docs/design.md, "Restore").
 * @module
 */
import { ExitCode, WalsyncError } from "../errors.ts";
import type { BackupObject } from "../layout.ts";
import { decodeSegmentMeta, decodeSnapshotMeta, type SegmentMeta, type SnapshotMeta } from "../metadata.ts";
import type { ObjectData, ObjectInfo, Store } from "../storage/store.ts";

/** How far ahead to fetch. */
export interface PrefetchOptions {
  /** Objects in flight or waiting, at most (default 16). */
  window?: number;
  /** Objects up to this size are downloaded whole ahead of time (default 1 MiB). */
  smallBytes?: number;
}

/** An object fetched ahead: what a HEAD says, and a way to get its content. */
export interface Prefetched {
  object: BackupObject;
  /** Its metadata and stored size; null when it no longer exists. */
  info: ObjectInfo | null;
  /** Its content as {@link Store.get} would return it (downloaded now if it was not yet). */
  open(): Promise<ObjectData>;
  /** Drops a downloaded body that will not be used. */
  release(): void;
}

/** A whole object held in memory, served as a stream. */
function inMemory(info: ObjectInfo, bytes: Uint8Array): ObjectData {
  return {
    ...info,
    body: new ReadableStream({
      start(controller) {
        controller.enqueue(bytes);
        controller.close();
      },
    }),
  };
}

/**
 * Reads a small body whole. Byte streams are read straight into a buffer of the announced size (a
 * default reader would allocate a 64 KiB chunk per read: garbage that made peak memory follow the
 * number of segments restored); anything else is collected chunk by chunk.
 */
async function readAll(body: ReadableStream<Uint8Array>, size: number): Promise<Uint8Array> {
  let reader: ReadableStreamBYOBReader | null = null;
  try {
    reader = body.getReader({ mode: "byob" });
  } catch { /* not a byte stream */ }
  if (!reader || !Number.isFinite(size)) {
    reader?.releaseLock();
    return new Uint8Array(await new Response(body).arrayBuffer());
  }
  // One byte more than announced, to notice a body longer than its size (the checks then judge it).
  let buffer = new Uint8Array(size + 1);
  let filled = 0;
  try {
    while (true) {
      if (filled === buffer.byteLength) {
        const bigger = new Uint8Array(buffer.byteLength * 2);
        bigger.set(buffer);
        buffer = bigger;
      }
      const { done, value } = await reader.read(buffer.subarray(filled));
      if (value) buffer = new Uint8Array(value.buffer); // the read transferred the buffer; take it back
      if (done) break;
      filled += value!.byteLength;
    }
  } finally {
    reader.releaseLock();
  }
  return buffer.subarray(0, filled);
}

function isNotFound(e: unknown): boolean {
  return e instanceof WalsyncError && e.exitCode === ExitCode.NotFound;
}

/** Starts fetching one object: a small one whole (GET), a large one's metadata (HEAD). */
async function fetchOne(store: Store, object: BackupObject, smallBytes: number): Promise<Prefetched> {
  if (object.size <= smallBytes) {
    let data: ObjectData | null = null;
    try {
      data = await store.get(object.key);
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    if (!data) return { object, info: null, open: () => store.get(object.key), release() {} };
    const { body, ...info } = data;
    let bytes: Uint8Array | null = await readAll(body, data.size);
    return {
      object,
      info,
      open: () => Promise.resolve(bytes ? inMemory(info, bytes) : store.get(object.key)),
      release() {
        bytes = null;
      },
    };
  }
  const info = await store.head(object.key);
  return { object, info, open: () => store.get(object.key), release() {} };
}

/**
 * Yields `objects` fetched ahead, in their order. A failure to fetch (other than a missing object,
 * which comes out with `info: null`) is thrown when its turn comes.
 */
export async function* prefetch(
  store: Store,
  objects: AsyncIterable<BackupObject>,
  options: PrefetchOptions = {},
): AsyncGenerator<Prefetched> {
  const window = options.window ?? 16;
  const smallBytes = options.smallBytes ?? 1024 * 1024;
  const queue: Promise<Prefetched>[] = [];
  const iterator = objects[Symbol.asyncIterator]();
  let exhausted = false;
  const fill = async () => {
    while (!exhausted && queue.length < window) {
      const next = await iterator.next();
      if (next.done) {
        exhausted = true;
        return;
      }
      const fetching = fetchOne(store, next.value, smallBytes);
      fetching.catch(() => {}); // observed when its turn comes
      queue.push(fetching);
    }
  };
  try {
    await fill();
    while (queue.length) {
      const item = await queue.shift()!;
      await fill();
      yield item;
    }
  } finally {
    // Stopped early: drop what was fetched ahead.
    for (const pending of queue) pending.then((p) => p.release(), () => {});
    await iterator.return?.();
  }
}

/**
 * Runs `fn` over `items` with up to `limit` calls in flight, yielding the results in the order of
 * `items` (a bounded window: never more than `limit` results wait).
 */
export async function* mapOrdered<T, R>(
  items: AsyncIterable<T>,
  limit: number,
  fn: (item: T) => Promise<R>,
): AsyncGenerator<R> {
  const queue: Promise<R>[] = [];
  for await (const item of items) {
    const running = fn(item);
    running.catch(() => {}); // observed in turn
    queue.push(running);
    if (queue.length >= limit) yield await queue.shift()!;
  }
  while (queue.length) yield await queue.shift()!;
}

/** A prefetched object with its walsync metadata decoded, ready for chain ordering. */
export interface PrefetchedItem extends Omit<Prefetched, "open"> {
  /** Null when missing or unreadable: the checks that read the object report why. */
  meta: SnapshotMeta | SegmentMeta | null;
  /** Like {@link Prefetched.open}, but a missing object gives null (judged as damage by the reader). */
  open(): Promise<ObjectData | null>;
}

/** Decodes the metadata of prefetched objects for {@link chainOrder}-style ordering. */
export async function* withMeta(items: AsyncIterable<Prefetched>): AsyncGenerator<PrefetchedItem> {
  for await (const item of items) {
    let meta: SnapshotMeta | SegmentMeta | null = null;
    try {
      if (item.info) {
        meta = item.object.kind === "snapshot"
          ? decodeSnapshotMeta(item.info.metadata)
          : decodeSegmentMeta(item.info.metadata);
      }
    } catch { /* reported when the object is read */ }
    yield {
      ...item,
      meta,
      open: () =>
        item.open().catch((e) => {
          if (isNotFound(e)) return null;
          throw e;
        }),
    };
  }
}
