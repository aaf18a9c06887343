/**
 * The retention mark, `<name>/retention.json`: written by a prune *before* it deletes anything, it says
 * which snapshot restores now start from (and the horizon it was chosen for). Readers (`verify`,
 * `restore`) hide every object below it, so that history before the horizon, gone on purpose or
 * left half deleted by a prune killed mid-run, is neither damage nor a restore target
 * (docs/design.md §11).
 * @module
 */
import { formatGeneration, parseObjectKey } from "../layout.ts";
import type { Damage } from "../restore/damage.ts";
import { readSmall } from "../restore/state_hint.ts";
import { bytesSource } from "../storage/source.ts";
import type { ListedObject, Store } from "../storage/store.ts";
import { uploadVerified } from "../storage/upload.ts";
import { belowHorizon } from "./retention.ts";
import { parsePageSetKey } from "../compact/key.ts";

/** What `<name>/retention.json` holds. */
export interface RetentionMark {
  /** The horizon (ISO 8601) the prune kept history from. */
  horizon: string;
  /** The kept snapshot: the oldest object of the database after the prune. */
  generation: number;
  snapshot: string;
  /** The kept snapshot's time (ISO 8601): the oldest restorable time. */
  restorableFrom: string;
}

/** The key of a database's retention mark. */
export function retentionKey(name: string): string {
  return `${name}/retention.json`;
}

/** Writes the mark (uploaded and confirmed before the caller deletes anything). */
export async function writeMark(store: Store, name: string, mark: RetentionMark): Promise<void> {
  const body = new TextEncoder().encode(JSON.stringify(mark) + "\n");
  await uploadVerified(store, retentionKey(name), bytesSource(body));
}

/** Reads the mark of `name`, or null if there is none or it is unreadable (then nothing is hidden). */
export async function readMark(store: Store, name: string): Promise<RetentionMark | null> {
  const info = await store.head(retentionKey(name));
  if (!info) return null;
  try {
    const bytes = await readSmall((await store.get(retentionKey(name))).body);
    if (!bytes) return null;
    const mark = JSON.parse(new TextDecoder().decode(bytes)) as RetentionMark;
    if (!Number.isInteger(mark.generation) || Number.isNaN(Date.parse(mark.restorableFrom))) return null;
    const kept = parseObjectKey(mark.snapshot);
    return kept?.name === name && kept.kind === "snapshot" ? mark : null;
  } catch {
    return null;
  }
}

/** Describes a mark for log lines. */
export function describeMark(mark: RetentionMark): string {
  return `generation ${
    formatGeneration(mark.generation)
  } from ${mark.restorableFrom} (horizon ${mark.horizon})`;
}

const PRUNED = Symbol("retention mark");

/** For a store from {@link retainedView}: the mark it hides history below, or null. */
export function prunedMark(store: Store): RetentionMark | null {
  return (store as { [PRUNED]?: RetentionMark })[PRUNED] ?? null;
}

/**
 * Whether `damage` is only the missing start of the generation a prune cut: that generation now
 * starts at the kept snapshot, after segments that were deleted on purpose. Only when the kept
 * snapshot itself is there and first: if it is gone, that is damage like any other.
 */
export function isPrunedStart(damage: Damage, mark: RetentionMark | null): boolean {
  return mark !== null && damage.generation === mark.generation && damage.kind === "snapshot" &&
    damage.reason === "missing" && damage.key === null &&
    damage.message.includes(`the first snapshot, ${mark.snapshot}, comes after segment(s)`);
}

/**
 * `store` as readers should see database `name` after a prune: its listing leaves out the objects
 * below the mark (and the mark itself). Everything else passes through.
 */
export async function retainedView(store: Store, name: string): Promise<Store> {
  const mark = await readMark(store, name);
  if (!mark) return store;
  const keep = { generation: mark.generation, time: Date.parse(mark.restorableFrom) };
  const own = retentionKey(name);
  const visible = (entry: ListedObject) => {
    if (entry.key === own) return false;
    const object = parseObjectKey(entry.key) ?? parsePageSetKey(entry.key);
    return !object || object.name !== name || !belowHorizon(object, keep);
  };
  const view: Store & { [PRUNED]?: RetentionMark } = {
    url: store.url,
    codec: store.codec,
    put: (key, body, metadata, md5) => store.put(key, body, metadata, md5),
    usesContentMd5: (size) => store.usesContentMd5?.(size) ?? true,
    get: (key) => store.get(key),
    head: (key) => store.head(key),
    async *list(prefix: string, startAfter?: string) {
      for await (const entry of store.list(prefix, startAfter)) if (visible(entry)) yield entry;
    },
    putSmall: (key, body, metadata, condition) => store.putSmall(key, body, metadata, condition),
    delete: (key) => store.delete(key),
    deleteMany: (keys) => store.deleteMany(keys),
  };
  view[PRUNED] = mark;
  if (store.abortIncompleteUploads) view.abortIncompleteUploads = (p) => store.abortIncompleteUploads!(p);
  return view;
}
