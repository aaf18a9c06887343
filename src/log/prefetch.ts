/**
 * Fetching ahead: while one object is applied, the next ones are already on their way (up to
 * `window` requests in flight), and come out in order. Memory stays bounded by a byte budget: an
 * object is downloaded whole into memory ahead of its turn while the bodies held ahead, its own
 * included, stay within `aheadBytes` (the filling waits for room otherwise); only an object larger
 * than the whole budget has just its metadata read ahead (HEAD) and is downloaded as a stream when
 * its turn comes (docs/design.md §6).
 * @module
 */
import { ExitCode, WalsyncError } from "../errors.ts";
import type { BackupObject } from "../layout.ts";
import { decodePageSetMeta, type PageSetMeta } from "../compact/meta.ts";
import { decodeSegmentMeta, decodeSnapshotMeta, type SegmentMeta, type SnapshotMeta } from "../metadata.ts";
import type { ObjectData, ObjectInfo, Store } from "../storage/store.ts";

/** How far ahead to fetch. */
export interface PrefetchOptions {
  /** Objects in flight or waiting, at most (default 16). */
  window?: number;
  /**
   * Stored bytes downloaded ahead and held in memory, at most (default 16 MiB). The object being
   * applied is no longer counted: memory peaks at about twice this.
   */
  aheadBytes?: number;
}

/** The default budget of {@link PrefetchOptions.aheadBytes}. */
export const DEFAULT_AHEAD_BYTES = 16 * 1024 * 1024;

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

/** Starts fetching one object: whole (GET) or only its metadata (HEAD), to be streamed in turn. */
async function fetchOne(store: Store, object: BackupObject, whole: boolean): Promise<Prefetched> {
  if (whole) {
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
  const budget = options.aheadBytes ?? DEFAULT_AHEAD_BYTES;
  /** Fetches in order, each with the bytes it holds against the budget. */
  const queue: { fetching: Promise<Prefetched>; bytes: number }[] = [];
  let held = 0;
  /** The next object, taken from the listing but waiting for room in the budget. */
  let waiting: BackupObject | null = null;
  const iterator = objects[Symbol.asyncIterator]();
  let exhausted = false;
  const fill = async () => {
    while (queue.length < window) {
      let object = waiting;
      if (!object) {
        if (exhausted) return;
        const next = await iterator.next();
        if (next.done) {
          exhausted = true;
          return;
        }
        object = next.value;
      }
      // Sizes come from the listing; a body longer than listed is judged by the checks that read it.
      const whole = object.size <= budget;
      if (whole && held + object.size > budget && queue.length > 0) {
        waiting = object; // room comes as the objects ahead of it are taken
        return;
      }
      waiting = null;
      const bytes = whole ? object.size : 0;
      held += bytes;
      const fetching = fetchOne(store, object, whole);
      fetching.catch(() => {}); // observed when its turn comes
      queue.push({ fetching, bytes });
    }
  };
  try {
    await fill();
    while (queue.length) {
      const { fetching, bytes } = queue.shift()!;
      held -= bytes;
      const item = await fetching;
      await fill();
      yield item;
    }
  } finally {
    // Stopped early: drop what was fetched ahead.
    for (const { fetching } of queue) fetching.then((p) => p.release(), () => {});
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
  meta: SnapshotMeta | SegmentMeta | PageSetMeta | null;
  /** Like {@link Prefetched.open}, but a missing object gives null (judged as damage by the reader). */
  open(): Promise<ObjectData | null>;
}

/** Decodes the metadata of prefetched objects (snapshots, segments, page sets) for {@link chainOrder}-style ordering. */
export async function* withMeta(items: AsyncIterable<Prefetched>): AsyncGenerator<PrefetchedItem> {
  for await (const item of items) {
    let meta: SnapshotMeta | SegmentMeta | PageSetMeta | null = null;
    try {
      if (item.info) {
        const decode = item.object.kind === "snapshot"
          ? decodeSnapshotMeta
          : item.object.kind === "pages"
          ? decodePageSetMeta
          : decodeSegmentMeta;
        meta = decode(item.info.metadata);
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
