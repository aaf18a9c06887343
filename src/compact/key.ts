/**
 * Keys of compacted page sets (docs/design.md §11.1):
 *
 * ```
 * <name>/pages/<gen8>-<level>-<first10>-<last10>-<firstTime17>-<lastTime17>.pages
 * ```
 *
 * `first`/`last` are the segment indexes the set replaces, the times those segments' key times. Every
 * field a compactor or a restore plans with is in the key, so planning needs a listing, not a HEAD.
 * Within a generation and level, key order is index order (= time order).
 * @module
 */
import { type BackupObject, formatGeneration, formatTimestamp, parseTimestamp } from "../layout.ts";

/** A page set, decoded from its key. */
export interface PageSetObject extends BackupObject {
  kind: "pages";
  /** 1 = the finest level (built from segments); level n is built from level n − 1. */
  level: number;
  /** Indexes of the first and last segment it replaces (inclusive). */
  firstIndex: number;
  lastIndex: number;
  /** Key time of its first segment; `time` is the key time of its last one. */
  firstTime: number;
}

const KEY = /^([^/]+)\/pages\/(\d{8})-(\d)-(\d{10})-(\d{10})-(\d{17})-(\d{17})\.pages$/;

/** The folder of a database's page sets. */
export function pagesPrefix(name: string, generation?: number): string {
  return `${name}/pages/` + (generation === undefined ? "" : `${formatGeneration(generation)}-`);
}

/** The key of a page set. */
export function pageSetKey(
  name: string,
  generation: number,
  level: number,
  range: { firstIndex: number; lastIndex: number; firstTime: number; lastTime: number },
): string {
  const idx = (n: number) => String(n).padStart(10, "0");
  return `${pagesPrefix(name, generation)}${level}-${idx(range.firstIndex)}-${idx(range.lastIndex)}-` +
    `${formatTimestamp(range.firstTime)}-${formatTimestamp(range.lastTime)}.pages`;
}

/** Decodes a page set key; null for any other key. */
export function parsePageSetKey(key: string, size = 0): PageSetObject | null {
  const m = KEY.exec(key);
  if (!m) return null;
  const [firstIndex, lastIndex] = [Number(m[4]), Number(m[5])];
  if (lastIndex < firstIndex || Number(m[3]) < 1) return null;
  return {
    key,
    name: m[1],
    kind: "pages",
    generation: Number(m[2]),
    level: Number(m[3]),
    firstIndex,
    lastIndex,
    firstTime: parseTimestamp(m[6]),
    time: parseTimestamp(m[7]),
    size,
  };
}

/** Lists the page sets of `name` (one generation, or all), in key order. */
export async function* listPageSets(
  store: { list(prefix: string, startAfter?: string): AsyncIterable<{ key: string; size: number }> },
  name: string,
  generation?: number,
): AsyncGenerator<PageSetObject> {
  for await (const entry of store.list(pagesPrefix(name, generation))) {
    const set = parsePageSetKey(entry.key, entry.size);
    if (set && set.name === name) yield set;
  }
}
