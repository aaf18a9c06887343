/**
 * The commit markers of bench/lib/writer.py ("WSMK<n:08d>", n = 1, 2, … per database) and
 * finding the newest one in a stored object, whichever tool wrote it: walsync's objects are raw or
 * zstd (its default), Litestream's are LZ4 frames.
 * @module
 */
import { zstdDecompressSync } from "node:zlib";
import { lz4Decode } from "./lz4.ts";

const MARKER = /WSMK(\d{8})/g;

/** The newest commit number found in `bytes` as they are (0 if none). */
export function newestMarker(bytes: Uint8Array): number {
  const text = new TextDecoder("latin1").decode(bytes);
  let newest = 0;
  for (const m of text.matchAll(MARKER)) newest = Math.max(newest, Number(m[1]));
  return newest;
}

const ZSTD_MAGIC = 0xfd2fb528;

/**
 * Decompresses walsync's zstd objects: zstd frames, each preceded by a skippable frame holding its
 * compressed length (src/codec/zstd.ts). node:zlib stops at a skippable frame, hence frame by frame.
 */
function zstdFrames(bytes: Uint8Array): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const parts: Uint8Array[] = [];
  let pos = 0;
  let next: number | null = null;
  while (pos + 8 <= bytes.length) {
    const magic = view.getUint32(pos, true);
    if ((magic & 0xfffffff0) === 0x184d2a50) {
      const size = view.getUint32(pos + 4, true);
      next = size === 4 ? view.getUint32(pos + 8, true) : null;
      pos += 8 + size;
      continue;
    }
    const end = next === null ? bytes.length : pos + next;
    parts.push(new Uint8Array(zstdDecompressSync(bytes.subarray(pos, end))));
    pos = end;
    next = null;
  }
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * The newest commit number in a stored object: decompressed first when it is an LZ4 frame (by
 * magic) or holds zstd frames (walsync's zstd objects start with a skippable frame), else as is.
 */
export function newestMarkerInObject(bytes: Uint8Array): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = bytes.length >= 4 ? view.getUint32(0, true) : 0;
  try {
    if (magic === 0x184d2204) return newestMarker(lz4Decode(bytes));
    if (magic === ZSTD_MAGIC || (magic & 0xfffffff0) === 0x184d2a50) return newestMarker(zstdFrames(bytes));
  } catch {
    // not what the magic said: fall back to the raw bytes
  }
  return newestMarker(bytes);
}
