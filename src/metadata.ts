/**
 * The metadata walsync stores with each snapshot and segment (as `x-amz-meta-*` on S3, in a
 * sidecar for `file://`). Everything restore needs to verify an object and its place in the chain
 * of a generation is here; the codec fields (added by the upload, see src/codec/codec.ts) say how
 * the content is stored: `sha256` covers the stored bytes, `content-sha256` the decoded content.
 * @module
 */
import { type StoredForm, storedForm } from "./codec/codec.ts";
import { type Checksum, WAL_FRAME_HEADER_SIZE, type WalPosition } from "./wal.ts";

/**
 * The object format written and read by this version. walsync-2 added the codec (compression,
 * encryption, `content-sha256`); walsync-1 objects (written by 0.1.0, never released) are refused.
 */
export const FORMAT = "walsync-2";

/** What a snapshot records. */
export interface SnapshotMeta {
  pageSize: number;
  pageCount: number;
  /** WAL position the image corresponds to; null when there was no valid WAL. */
  position: WalPosition | null;
  /** Number of segments of the generation stored before this snapshot. */
  segmentsBefore: number;
  /** SHA-256 of the stored bytes. */
  sha256?: string;
  /** SHA-256 of the image (after decoding). */
  contentSha256: string;
  /** How it is stored (codec fields). */
  stored: StoredForm;
}

/** What a segment records. */
export interface SegmentMeta {
  /** 0-based index of the segment within its generation. */
  index: number;
  pageSize: number;
  /** The WAL header fields of the cycle the frames belong to. */
  magic: number;
  checkpointSeq: number;
  salt1: number;
  salt2: number;
  /** Frame number (1-based, within the cycle) of the first frame. */
  firstFrame: number;
  frameCount: number;
  /** Running checksum before the first frame, and after the last. */
  before: Checksum;
  after: Checksum;
  /** Database size in pages after the segment's last transaction. */
  commitSize: number;
  /** SHA-256 of the stored bytes. */
  sha256?: string;
  /** SHA-256 of the frames (after decoding). */
  contentSha256: string;
  /** How it is stored (codec fields). */
  stored: StoredForm;
}

const hex = (n: number) => n.toString(16).padStart(8, "0");
const unhex = (s: string) => {
  if (!/^[0-9a-f]{8}$/.test(s)) throw new Error(`bad hex word ${s}`);
  return parseInt(s, 16);
};
const encodeChecksum = (c: Checksum) => `${hex(c[0])}${hex(c[1])}`;
const decodeChecksum = (s: string): Checksum => [unhex(s.slice(0, 8)), unhex(s.slice(8, 16))];

function int(meta: Record<string, string>, key: string): number {
  const value = meta[key];
  if (value === undefined || !/^\d+$/.test(value)) throw new Error(`metadata ${key} missing or not a number`);
  return Number(value);
}

function checkFormat(meta: Record<string, string>): void {
  if (meta.format !== FORMAT) {
    throw new Error(
      `object format "${
        meta.format ?? "(none)"
      }" is not readable by this version of walsync (it reads ${FORMAT})`,
    );
  }
}

/** The codec fields, checked against the content size the rest of the metadata implies. */
function codecFields(meta: Record<string, string>, contentLength: number): StoredForm {
  const form = storedForm(meta);
  if (form.contentLength !== contentLength) {
    throw new Error(
      `content-length ${form.contentLength} contradicts the ${contentLength} bytes it describes`,
    );
  }
  return form;
}

/** What the metadata fields of a snapshot or segment encode (the codec fields come from the upload). */
type Encoded<M> = Omit<M, "sha256" | "contentSha256" | "stored">;

/** Encodes snapshot metadata. */
export function encodeSnapshotMeta(m: Encoded<SnapshotMeta>): Record<string, string> {
  return {
    format: FORMAT,
    "page-size": String(m.pageSize),
    "page-count": String(m.pageCount),
    "wal-position": m.position
      ? `${hex(m.position.salt1)}${hex(m.position.salt2)}-${m.position.frame}-${
        encodeChecksum(m.position.checksum)
      }`
      : "none",
    "segments-before": String(m.segmentsBefore),
  };
}

/** Decodes snapshot metadata; throws an Error saying what is wrong. */
export function decodeSnapshotMeta(meta: Record<string, string>): SnapshotMeta {
  checkFormat(meta);
  const raw = meta["wal-position"];
  let position: WalPosition | null = null;
  if (raw !== "none") {
    const m = /^([0-9a-f]{8})([0-9a-f]{8})-(\d+)-([0-9a-f]{16})$/.exec(raw ?? "");
    if (!m) throw new Error(`bad wal-position "${raw}"`);
    position = {
      salt1: unhex(m[1]),
      salt2: unhex(m[2]),
      frame: Number(m[3]),
      checksum: decodeChecksum(m[4]),
    };
  }
  const pageSize = int(meta, "page-size");
  const pageCount = int(meta, "page-count");
  const stored = codecFields(meta, pageSize * pageCount);
  return {
    pageSize,
    pageCount,
    position,
    segmentsBefore: int(meta, "segments-before"),
    sha256: meta.sha256,
    contentSha256: stored.contentSha256,
    stored,
  };
}

/** Encodes segment metadata. */
export function encodeSegmentMeta(m: Encoded<SegmentMeta>): Record<string, string> {
  return {
    format: FORMAT,
    index: String(m.index),
    "page-size": String(m.pageSize),
    "wal-header": `${hex(m.magic)}-${m.checkpointSeq}-${hex(m.salt1)}${hex(m.salt2)}`,
    "first-frame": String(m.firstFrame),
    "frame-count": String(m.frameCount),
    checksums: `${encodeChecksum(m.before)}-${encodeChecksum(m.after)}`,
    "commit-size": String(m.commitSize),
  };
}

/** Decodes segment metadata; throws an Error saying what is wrong. */
export function decodeSegmentMeta(meta: Record<string, string>): SegmentMeta {
  checkFormat(meta);
  const h = /^([0-9a-f]{8})-(\d+)-([0-9a-f]{8})([0-9a-f]{8})$/.exec(meta["wal-header"] ?? "");
  if (!h) throw new Error(`bad wal-header "${meta["wal-header"]}"`);
  const c = /^([0-9a-f]{16})-([0-9a-f]{16})$/.exec(meta.checksums ?? "");
  if (!c) throw new Error(`bad checksums "${meta.checksums}"`);
  const pageSize = int(meta, "page-size");
  const frameCount = int(meta, "frame-count");
  const stored = codecFields(meta, frameCount * (WAL_FRAME_HEADER_SIZE + pageSize));
  return {
    index: int(meta, "index"),
    pageSize,
    magic: unhex(h[1]),
    checkpointSeq: Number(h[2]),
    salt1: unhex(h[3]),
    salt2: unhex(h[4]),
    firstFrame: int(meta, "first-frame"),
    frameCount,
    before: decodeChecksum(c[1]),
    after: decodeChecksum(c[2]),
    commitSize: int(meta, "commit-size"),
    sha256: meta.sha256,
    contentSha256: stored.contentSha256,
    stored,
  };
}
