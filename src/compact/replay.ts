/**
 * Reading a page set the way a segment is read (docs/design.md §11.1): metadata decoded and
 * checked, stored bytes verified by the codec (SHA-256), content SHA-256 checked, records in strictly
 * increasing page order within the final database size, and continuity with the chain it is applied
 * to. Every failure is a {@link DamageError} naming the page set.
 * @module
 */
import { canDecode, decodeBody, storedBytesOnly } from "../codec/decode.ts";
import { ExitCode, WalsyncError } from "../errors.ts";
import { newSha256 } from "../hash.ts";
import type { Fetch, PageWriter } from "../restore/apply.ts";
import type { ReplayState } from "../restore/continuity.ts";
import { type Damage, DamageError, damageOf, type DamageReason } from "../restore/damage.ts";
import { fixedRecords, reusedChunks } from "../restore/frames.ts";
import type { ObjectData, Store } from "../storage/store.ts";
import type { PageSetObject } from "./key.ts";
import {
  decodePageSetMeta,
  PAGE_RECORD_HEADER,
  pageSetContinuity,
  type PageSetMeta,
  stateAfterPageSet,
} from "./meta.ts";

function fail(store: Store, set: PageSetObject, reason: DamageReason, message: string): never {
  throw new DamageError(
    damageOf(set.key, "pages", reason, message, { generation: set.generation, index: set.firstIndex }),
    store.url,
  );
}

/** GET (or HEAD) of a listed page set, its metadata decoded and checked against its key and size. */
async function openPageSet(
  store: Store,
  set: PageSetObject,
  withBody: boolean,
  fetched?: Fetch,
): Promise<{ meta: PageSetMeta; raw: ReadableStream<Uint8Array> | null }> {
  let info;
  try {
    info = fetched ? await fetched() : withBody ? await store.get(set.key) : await store.head(set.key);
  } catch (e) {
    if (!(e instanceof WalsyncError && e.exitCode === ExitCode.NotFound)) throw e;
  }
  if (!info) return fail(store, set, "missing", "listed, but it no longer exists");
  const raw = "body" in info ? (info as ObjectData).body : null;
  let meta: PageSetMeta;
  try {
    meta = decodePageSetMeta(info.metadata);
  } catch (e) {
    await raw?.cancel().catch(() => {});
    return fail(store, set, "metadata", `unreadable page set metadata: ${(e as Error).message}`);
  }
  let problem: string | null = null;
  if (meta.firstIndex !== set.firstIndex || meta.lastIndex !== set.lastIndex || meta.level !== set.level) {
    problem = "its metadata does not match its key";
  } else if (!meta.sha256) {
    problem = "no sha256 in its metadata; refusing to use an unverifiable object";
  } else if (Number.isFinite(info.size) && info.size !== meta.stored.storedLength) {
    problem = `${info.size} bytes stored, its metadata says ${meta.stored.storedLength}`;
  }
  if (problem) {
    await raw?.cancel().catch(() => {});
    fail(store, set, problem.startsWith("no sha") ? "metadata" : "corrupt", problem);
  }
  return { meta, raw };
}

/** Streams the records of a page set's content, checking order, bounds and the content SHA-256. */
async function pageContent(
  store: Store,
  set: PageSetObject,
  meta: PageSetMeta,
  body: ReadableStream<Uint8Array>,
  writer?: PageWriter,
): Promise<void> {
  const hash = newSha256();
  const hashed = async function* () {
    for await (const chunk of reusedChunks(body)) {
      hash.update(chunk);
      yield chunk;
    }
  };
  let records = 0;
  let previous = 0;
  let bad: string | null = null;
  try {
    for await (const record of fixedRecords(hashed(), PAGE_RECORD_HEADER + meta.pageSize)) {
      const pgno = new DataView(record.buffer, record.byteOffset, 4).getUint32(0);
      records++;
      if (bad) continue;
      if (pgno <= previous || pgno > meta.commitSize) {
        bad = `page record ${records} (page ${pgno}) is out of order or beyond the database size`;
        continue;
      }
      previous = pgno;
      await writer?.writeAt((pgno - 1) * meta.pageSize, record.subarray(PAGE_RECORD_HEADER));
    }
  } catch (e) {
    if (e instanceof RangeError) fail(store, set, "truncated", `truncated (${e.message})`);
    throw e;
  } finally {
    await writer?.flush?.(); // nothing held back past an object (src/restore/page_writer.ts)
  }
  const digest = hash.digest("hex");
  if (digest !== meta.contentSha256) {
    fail(store, set, "corrupt", `SHA-256 mismatch (stored ${meta.contentSha256}, content ${digest})`);
  }
  if (bad) fail(store, set, "corrupt", bad);
  if (records !== meta.pageCount) {
    fail(store, set, "corrupt", `${records} page records, metadata says ${meta.pageCount}`);
  }
}

/**
 * Applies page set `set` to a replay at `state` (null: the first object of a merge, whose start is
 * not checked) through `writer` (or the writer `writer(meta)` makes once the metadata is read).
 * `fetched` is a download already under way (src/log/prefetch.ts). Returns the state after it and
 * its metadata.
 */
export async function replayPageSet(
  store: Store,
  set: PageSetObject,
  state: ReplayState | null,
  writer?: PageWriter | ((meta: PageSetMeta) => PageWriter),
  fetched?: Fetch,
): Promise<{ state: ReplayState; meta: PageSetMeta }> {
  const { meta, raw } = await openPageSet(store, set, true, fetched);
  try {
    const why = state ? pageSetContinuity(state, meta) : null;
    if (why) fail(store, set, "chain", `does not continue the restore chain: ${why}`);
    const body = decodeBody(store, set.key, meta.stored, raw!, (r, m) => fail(store, set, r, m));
    await pageContent(store, set, meta, body, typeof writer === "function" ? writer(meta) : writer);
  } catch (e) {
    await raw?.cancel().catch(() => {});
    throw e;
  }
  return { state: stateAfterPageSet(meta), meta };
}

/** What `verify` learns about one page set on its own (continuity is the caller's). */
export interface PageSetInspection {
  object: PageSetObject;
  meta: PageSetMeta | null;
  damage: Damage | null;
  contentChecked: boolean;
}

/** Checks a page set's metadata and, unless `quick`, its content (nothing written anywhere). */
export async function inspectPageSet(
  store: Store,
  set: PageSetObject,
  quick: boolean,
): Promise<PageSetInspection> {
  let meta: PageSetMeta | null = null;
  let contentChecked = false;
  try {
    const opened = await openPageSet(store, set, !quick);
    meta = opened.meta;
    if (opened.raw) {
      const damaged = (r: "corrupt" | "truncated", m: string) => fail(store, set, r, m);
      if (!canDecode(store, meta.stored)) {
        for await (const _ of storedBytesOnly(meta.stored, opened.raw, damaged)) { /* hash only */ }
      } else {
        await pageContent(store, set, meta, decodeBody(store, set.key, meta.stored, opened.raw, damaged));
        contentChecked = true;
      }
    }
    return { object: set, meta, damage: null, contentChecked };
  } catch (e) {
    if (e instanceof DamageError) return { object: set, meta, damage: e.damage, contentChecked };
    throw e;
  }
}
