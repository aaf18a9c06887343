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
 * The newest commit number in a stored object: decompressed first when it is an LZ4 frame (by
 * magic) or holds zstd frames (walsync's zstd objects start with a skippable frame), else as is.
 */
export function newestMarkerInObject(bytes: Uint8Array): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = bytes.length >= 4 ? view.getUint32(0, true) : 0;
  try {
    if (magic === 0x184d2204) return newestMarker(lz4Decode(bytes));
    if (magic === ZSTD_MAGIC || (magic & 0xfffffff0) === 0x184d2a50) {
      return newestMarker(new Uint8Array(zstdDecompressSync(bytes)));
    }
  } catch {
    // not what the magic said: fall back to the raw bytes
  }
  return newestMarker(bytes);
}
