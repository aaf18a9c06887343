/**
 * The metadata of a page set (docs/design.md §11.1): the chain position before its first segment
 * (to check it continues the chain it is applied to) and after its last one (what the next segment
 * or page set must continue), and the database size at its last commit. Stored next to the codec
 * fields like a segment's (`x-amz-meta-*`, or the `.meta.json` sidecar).
 *
 * Content: one record per page, in page-number order: the page number (4 bytes, big-endian), then
 * the page as it was after the last of the replaced segments. Pages beyond the final database size
 * are left out.
 * @module
 */
import { type StoredForm, storedForm } from "../codec/codec.ts";
import { FORMAT, type SegmentMeta } from "../metadata.ts";
import type { ReplayState } from "../restore/continuity.ts";
import { segmentContinuity } from "../restore/continuity.ts";
import type { Checksum } from "../wal.ts";

/** Bytes before each page of a page set's content: its page number. */
export const PAGE_RECORD_HEADER = 4;

/** Where a chain stands: WAL cycle, frame and running checksum. */
export interface ChainPoint {
  magic: number;
  checkpointSeq: number;
  salt1: number;
  salt2: number;
  /** Before: the first frame of the first segment; after: the last frame of the last one. */
  frame: number;
  checksum: Checksum;
}

/** What a page set records. */
export interface PageSetMeta {
  level: number;
  pageSize: number;
  firstIndex: number;
  lastIndex: number;
  /** The first segment's cycle, first frame and `before` checksum. */
  before: ChainPoint;
  /** The last segment's cycle, last frame and `after` checksum. */
  after: ChainPoint;
  /** Database size in pages after the last segment's last transaction. */
  commitSize: number;
  /** Number of page records in the content. */
  pageCount: number;
  sha256?: string;
  contentSha256: string;
  stored: StoredForm;
}

const hex = (n: number) => n.toString(16).padStart(8, "0");
const unhex = (s: string) => parseInt(s, 16);

function encodePoint(p: ChainPoint): string {
  return `${hex(p.magic)}-${p.checkpointSeq}-${hex(p.salt1)}${hex(p.salt2)}-${p.frame}-` +
    `${hex(p.checksum[0])}${hex(p.checksum[1])}`;
}

function decodePoint(text: string | undefined, field: string): ChainPoint {
  const m = /^([0-9a-f]{8})-(\d+)-([0-9a-f]{8})([0-9a-f]{8})-(\d+)-([0-9a-f]{8})([0-9a-f]{8})$/.exec(
    text ?? "",
  );
  if (!m) throw new Error(`bad ${field} "${text}"`);
  return {
    magic: unhex(m[1]),
    checkpointSeq: Number(m[2]),
    salt1: unhex(m[3]),
    salt2: unhex(m[4]),
    frame: Number(m[5]),
    checksum: [unhex(m[6]), unhex(m[7])],
  };
}

function int(meta: Record<string, string>, key: string): number {
  const value = meta[key];
  if (value === undefined || !/^\d+$/.test(value)) throw new Error(`metadata ${key} missing or not a number`);
  return Number(value);
}

/** Encodes page set metadata (the codec fields are added by the upload). */
export function encodePageSetMeta(
  m: Omit<PageSetMeta, "sha256" | "contentSha256" | "stored">,
): Record<string, string> {
  return {
    format: FORMAT,
    kind: "pages",
    level: String(m.level),
    "page-size": String(m.pageSize),
    "first-index": String(m.firstIndex),
    "last-index": String(m.lastIndex),
    "chain-before": encodePoint(m.before),
    "chain-after": encodePoint(m.after),
    "commit-size": String(m.commitSize),
    "page-records": String(m.pageCount),
  };
}

/** Decodes page set metadata; throws an Error saying what is wrong. */
export function decodePageSetMeta(meta: Record<string, string>): PageSetMeta {
  if (meta.format !== FORMAT || meta.kind !== "pages") {
    throw new Error(`not a ${FORMAT} page set (format "${meta.format}", kind "${meta.kind}")`);
  }
  const pageSize = int(meta, "page-size");
  const pageCount = int(meta, "page-records");
  const stored = storedForm(meta);
  if (stored.contentLength !== pageCount * (PAGE_RECORD_HEADER + pageSize)) {
    throw new Error(`content-length ${stored.contentLength} contradicts ${pageCount} page records`);
  }
  const firstIndex = int(meta, "first-index");
  const lastIndex = int(meta, "last-index");
  if (lastIndex < firstIndex) throw new Error(`last-index ${lastIndex} before first-index ${firstIndex}`);
  return {
    level: int(meta, "level"),
    pageSize,
    firstIndex,
    lastIndex,
    before: decodePoint(meta["chain-before"], "chain-before"),
    after: decodePoint(meta["chain-after"], "chain-after"),
    commitSize: int(meta, "commit-size"),
    pageCount,
    sha256: meta.sha256,
    contentSha256: stored.contentSha256,
    stored,
  };
}

/** The chain point before segment `seg`, and after it. */
export function pointsOf(seg: SegmentMeta): { before: ChainPoint; after: ChainPoint } {
  const cycle = { magic: seg.magic, checkpointSeq: seg.checkpointSeq, salt1: seg.salt1, salt2: seg.salt2 };
  return {
    before: { ...cycle, frame: seg.firstFrame, checksum: seg.before },
    after: { ...cycle, frame: seg.firstFrame + seg.frameCount - 1, checksum: seg.after },
  };
}

/** The replay state right after a page set (as after its last segment). */
export function stateAfterPageSet(meta: PageSetMeta): ReplayState {
  const a = meta.after;
  return {
    pageSize: meta.pageSize,
    pageCount: meta.commitSize,
    position: { salt1: a.salt1, salt2: a.salt2, frame: a.frame, checksum: a.checksum },
    nextIndex: meta.lastIndex + 1,
  };
}

/**
 * Whether a page set can be applied to a replay at `state`: it must start exactly where `state`
 * ends (the same rule as its first segment, docs/design.md §5). Returns why not, or null.
 */
export function pageSetContinuity(state: ReplayState, meta: PageSetMeta): string | null {
  const b = meta.before;
  // The first segment as the chain rules see it; only the fields continuity reads matter.
  const first = {
    index: meta.firstIndex,
    pageSize: meta.pageSize,
    magic: b.magic,
    checkpointSeq: b.checkpointSeq,
    salt1: b.salt1,
    salt2: b.salt2,
    firstFrame: b.frame,
    frameCount: 1,
    before: b.checksum,
    after: b.checksum,
    commitSize: meta.commitSize,
    contentSha256: "",
    stored: meta.stored,
  } satisfies SegmentMeta;
  return segmentContinuity(state, first);
}
