/**
 * Building one page set (docs/design.md §11.1): its sources (segments for level 1, page sets of the
 * level below otherwise) are replayed in chain order, each verified exactly as a restore verifies
 * it, into a {@link PageCollector} that keeps the last version of each page in a temporary file
 * (memory holds only a page-number index); the result is uploaded through the store's codec with
 * a verified upload (PUT, then HEAD: size and sha256).
 * @module
 */
import { chainOrder } from "../log/duplicates.ts";
import { prefetch, withMeta } from "../log/prefetch.ts";
import type { SegmentMeta } from "../metadata.ts";
import { type PageWriter, replaySegment, type SegmentObject } from "../restore/apply.ts";
import type { ReplayState } from "../restore/continuity.ts";
import type { ByteSource } from "../storage/source.ts";
import type { Store } from "../storage/store.ts";
import { uploadVerified } from "../storage/upload.ts";
import { pageSetKey, type PageSetObject } from "./key.ts";
import { type ChainPoint, encodePageSetMeta, PAGE_RECORD_HEADER, pointsOf } from "./meta.ts";
import { testHook } from "../watch/test_hooks.ts";
import { replayPageSet } from "./replay.ts";

/** Collects pages (last version wins) in a temporary file; an index of page → offset in memory. */
export class PageCollector implements PageWriter {
  readonly #file: Deno.FsFile;
  readonly #offsets = new Map<number, number>();
  #end = 0;

  private constructor(readonly path: string, readonly pageSize: number) {
    this.#file = Deno.openSync(path, { read: true, write: true });
    // Unlinked at once where an open file can be (not Windows): a process killed mid-build (kill -9,
    // the OOM killer) then leaves nothing behind; the descriptor keeps the data until it is closed.
    if (Deno.build.os !== "windows") Deno.removeSync(path);
  }

  /** A collector backed by a new temporary file (gone when closed, or at once where possible). */
  static create(pageSize: number): PageCollector {
    return new PageCollector(Deno.makeTempFileSync({ prefix: "walsync-pages-" }), pageSize);
  }

  /** Records one page (`offset` is its byte offset in the database file). */
  writeAt(offset: number, bytes: Uint8Array): Promise<void> {
    if (bytes.byteLength !== this.pageSize || offset % this.pageSize !== 0) {
      return Promise.reject(new Error(`page collector: ${bytes.byteLength} bytes at ${offset}`));
    }
    const pgno = offset / this.pageSize + 1;
    let at = this.#offsets.get(pgno);
    if (at === undefined) {
      at = this.#end;
      this.#end += this.pageSize;
      this.#offsets.set(pgno, at);
    }
    this.#file.seekSync(at, Deno.SeekMode.Start);
    for (let off = 0; off < bytes.byteLength;) off += this.#file.writeSync(bytes.subarray(off));
    return Promise.resolve();
  }

  /** The content of the page set for a database of `commitSize` pages: records in page order. */
  content(commitSize: number): { source: ByteSource; pageCount: number } {
    const pages = [...this.#offsets.keys()].filter((p) => p <= commitSize).sort((a, b) => a - b);
    const record = PAGE_RECORD_HEADER + this.pageSize;
    const perChunk = Math.max(1, Math.floor((1 << 20) / record));
    const file = this.#file;
    const offsets = this.#offsets;
    const pageSize = this.pageSize;
    return {
      pageCount: pages.length,
      source: {
        size: pages.length * record,
        async *chunks() {
          const buffer = new Uint8Array(perChunk * record);
          for (let i = 0; i < pages.length; i += perChunk) {
            const batch = pages.slice(i, i + perChunk);
            batch.forEach((pgno, j) => {
              new DataView(buffer.buffer, j * record, 4).setUint32(0, pgno);
              const page = buffer.subarray(j * record + PAGE_RECORD_HEADER, (j + 1) * record);
              file.seekSync(offsets.get(pgno)!, Deno.SeekMode.Start);
              for (let off = 0; off < pageSize;) {
                const n = file.readSync(page.subarray(off));
                if (n === null) throw new Error("page collector: short read");
                off += n;
              }
            });
            yield buffer.subarray(0, batch.length * record);
          }
        },
      },
    };
  }

  /** Closes and removes the temporary file. */
  close(): void {
    try {
      this.#file.close();
    } catch { /* already closed */ }
    if (Deno.build.os === "windows") Deno.removeSync(this.path);
  }
}

/** A page set that was built and confirmed. */
export interface Built {
  set: PageSetObject;
  sha256: string;
}

/** The state a replay must be in for segment `seg` to continue it (its own starting point). */
function stateBefore(seg: SegmentMeta): ReplayState {
  return {
    pageSize: seg.pageSize,
    pageCount: 0,
    position: { salt1: seg.salt1, salt2: seg.salt2, frame: seg.firstFrame - 1, checksum: seg.before },
    nextIndex: seg.index,
  };
}

/**
 * Builds the level-1 page set of `segments` (consecutive, in key order, one generation), uploads it
 * and confirms it. Throws a DamageError when a segment is damaged or the run is broken.
 */
export async function buildFromSegments(
  store: Store,
  name: string,
  generation: number,
  segments: SegmentObject[],
): Promise<Built> {
  let collector: PageCollector | null = null;
  let state: ReplayState | null = null;
  let first: { index: number; time: number; before: ChainPoint } | null = null;
  let last: { index: number; time: number; after: ChainPoint } | null = null;
  const fetched = withMeta(prefetch(
    store,
    (async function* () {
      yield* segments;
    })(),
  ));
  try {
    for await (const { item, orphan } of chainOrder(fetched, null)) {
      if (orphan) {
        item.release();
        continue;
      }
      const meta = item.meta as SegmentMeta | null;
      if (meta && !state) {
        state = stateBefore(meta);
        collector = PageCollector.create(meta.pageSize);
        first = { index: meta.index, time: item.object.time, before: pointsOf(meta).before };
      }
      // Without readable metadata replaySegment throws the damage (after a dummy state, if first).
      state = await replaySegment(
        store,
        item.object as SegmentObject,
        state ?? emptyState(),
        collector!,
        item.open,
      );
      last = { index: meta!.index, time: item.object.time, after: pointsOf(meta!).after };
    }
    if (testHook("crash-in-build")) Deno.kill(Deno.pid, "SIGKILL"); // pages collected, not uploaded
    return await finish(store, name, generation, 1, collector!, state!, first!, last!);
  } finally {
    collector?.close();
  }
}

function emptyState(): ReplayState {
  return { pageSize: 0, pageCount: 0, position: null, nextIndex: 0 };
}

/** Builds the level-`level` page set merging `sets` (level − 1, contiguous, one generation). */
export async function buildFromSets(
  store: Store,
  name: string,
  generation: number,
  level: number,
  sets: PageSetObject[],
): Promise<Built> {
  let collector = null as PageCollector | null;
  let state: ReplayState | null = null;
  let before: ChainPoint | null = null;
  let after: ChainPoint | null = null;
  try {
    for (const set of sets) {
      const replayed = await replayPageSet(
        store,
        set,
        state,
        (meta) => collector ??= PageCollector.create(meta.pageSize),
      );
      before ??= replayed.meta.before;
      after = replayed.meta.after;
      state = replayed.state;
    }
    const head = sets[0];
    const tail = sets.at(-1)!;
    return await finish(
      store,
      name,
      generation,
      level,
      collector!,
      state!,
      { index: head.firstIndex, time: head.firstTime, before: before! },
      { index: tail.lastIndex, time: tail.time, after: after! },
    );
  } finally {
    collector?.close();
  }
}

/** Uploads the collected pages as a page set and confirms it. */
async function finish(
  store: Store,
  name: string,
  generation: number,
  level: number,
  collector: PageCollector,
  state: ReplayState,
  first: { index: number; time: number; before: ChainPoint },
  last: { index: number; time: number; after: ChainPoint },
): Promise<Built> {
  const range = {
    firstIndex: first.index,
    lastIndex: last.index,
    firstTime: first.time,
    lastTime: last.time,
  };
  const key = pageSetKey(name, generation, level, range);
  const { source, pageCount } = collector.content(state.pageCount);
  const metadata = encodePageSetMeta({
    level,
    pageSize: state.pageSize,
    firstIndex: first.index,
    lastIndex: last.index,
    before: first.before,
    after: last.after,
    commitSize: state.pageCount,
    pageCount,
  });
  const uploaded = await uploadVerified(store, key, source, metadata);
  return {
    set: {
      key,
      name,
      kind: "pages",
      generation,
      level,
      firstIndex: first.index,
      lastIndex: last.index,
      firstTime: first.time,
      time: last.time,
      size: uploaded.size,
    },
    sha256: uploaded.sha256,
  };
}
