/**
 * zstd compression of byte streams in independent frames of {@link FRAME_SIZE} content bytes, each
 * preceded by a zstd skippable frame that holds its compressed length (docs/design.md
 * §4.2). The result is still a valid zstd stream (`zstd -d` skips the skippable frames), and a
 * reader never holds more than one frame, whatever the compression ratio.
 *
 * Why frames and not node:zlib's streaming zstd: in Deno 2.9.6 the streaming decompressor throws an
 * uncatchable error on corrupt input (it would kill the process instead of reporting the object),
 * while the one-shot functions throw normally and bound their output (`maxOutputLength`).
 * @module
 */
import { constants, zstdCompressSync, zstdDecompressSync } from "node:zlib";

/** Content bytes per zstd frame (the last one may hold fewer). */
export const FRAME_SIZE = 1024 * 1024;
/** zstd level 3 (the library default): SQLite pages compress well at hundreds of MB/s. */
export const DEFAULT_ZSTD_LEVEL = 3;
/** The levels walsync accepts (`--compression-level`): 1 (fastest) to 19 (smallest). */
export const ZSTD_LEVELS = { min: 1, max: 19 } as const;
/**
 * node:zlib's output buffer size for one frame. Its default (16 KiB) makes 64 buffers and a concat
 * per 1 MiB frame: 256 KiB measured 1.3x faster compression and 1.8x faster decompression here,
 * same bytes (bench/RESULTS.md, session 6).
 */
const ZLIB_CHUNK = 256 * 1024;
const SKIPPABLE_MAGIC = 0x184d2a57;
const PREFIX_SIZE = 12;
/** A frame of FRAME_SIZE bytes never compresses to more than this (zstd's bound is ~0.4 % over). */
const MAX_FRAME = FRAME_SIZE + 64 * 1024;

function compressFrame(content: Uint8Array, level: number): Uint8Array {
  const frame = zstdCompressSync(content, {
    params: { [constants.ZSTD_c_compressionLevel]: level, [constants.ZSTD_c_checksumFlag]: 1 },
    chunkSize: ZLIB_CHUNK,
  });
  const out = new Uint8Array(PREFIX_SIZE + frame.byteLength);
  const view = new DataView(out.buffer);
  view.setUint32(0, SKIPPABLE_MAGIC, true);
  view.setUint32(4, 4, true);
  view.setUint32(8, frame.byteLength, true);
  out.set(frame, PREFIX_SIZE);
  return out;
}

/**
 * Compresses `input` (whose chunks may be reused buffers); the same input gives the same bytes.
 * `sizeHint` (the expected input size) keeps the frame buffer small for small inputs; `level` is the
 * zstd level (decompression does not need to know it).
 */
export async function* zstdCompress(
  input: AsyncIterable<Uint8Array>,
  sizeHint = FRAME_SIZE,
  level: number = DEFAULT_ZSTD_LEVEL,
): AsyncGenerator<Uint8Array> {
  let buffer = new Uint8Array(Math.max(1, Math.min(FRAME_SIZE, sizeHint)));
  let filled = 0;
  for await (const chunk of input) {
    for (let offset = 0; offset < chunk.byteLength;) {
      if (filled === buffer.byteLength && filled < FRAME_SIZE) {
        const grown = new Uint8Array(FRAME_SIZE); // more input than hinted
        grown.set(buffer);
        buffer = grown;
      }
      const take = Math.min(buffer.byteLength - filled, chunk.byteLength - offset);
      buffer.set(chunk.subarray(offset, offset + take), filled);
      filled += take;
      offset += take;
      if (filled === FRAME_SIZE) {
        yield compressFrame(buffer, level);
        filled = 0;
      }
    }
  }
  if (filled > 0) yield compressFrame(buffer.subarray(0, filled), level);
}

/** Malformed compressed data. */
export class ZstdError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ZstdError";
  }
}

/**
 * Decompresses what {@link zstdCompress} wrote. Every frame but the last must hold exactly
 * FRAME_SIZE bytes; throws {@link ZstdError} for anything else.
 */
export async function* zstdDecompress(input: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const buffer = new Uint8Array(MAX_FRAME);
  let want = PREFIX_SIZE;
  let filled = 0;
  let inFrame = false;
  let frames = 0;
  let short = false; // a frame with fewer than FRAME_SIZE bytes was seen: it must be the last
  for await (const chunk of input) {
    for (let offset = 0; offset < chunk.byteLength;) {
      const take = Math.min(want - filled, chunk.byteLength - offset);
      buffer.set(chunk.subarray(offset, offset + take), filled);
      filled += take;
      offset += take;
      if (filled < want) continue;
      if (!inFrame) {
        const view = new DataView(buffer.buffer, 0, PREFIX_SIZE);
        if (view.getUint32(0, true) !== SKIPPABLE_MAGIC || view.getUint32(4, true) !== 4) {
          throw new ZstdError(`frame ${frames}: no frame header`);
        }
        want = view.getUint32(8, true);
        if (want === 0 || want > MAX_FRAME) throw new ZstdError(`frame ${frames}: impossible length ${want}`);
        inFrame = true;
      } else {
        if (short) throw new ZstdError(`frame ${frames - 1} is short but not the last`);
        let content: Uint8Array;
        try {
          content = zstdDecompressSync(buffer.subarray(0, want), {
            maxOutputLength: FRAME_SIZE,
            chunkSize: ZLIB_CHUNK,
          });
        } catch (e) {
          throw new ZstdError(`frame ${frames}: ${(e as Error).message}`);
        }
        if (content.byteLength === 0) throw new ZstdError(`frame ${frames} is empty`);
        short = content.byteLength < FRAME_SIZE;
        frames++;
        want = PREFIX_SIZE;
        inFrame = false;
        yield content;
      }
      filled = 0;
    }
  }
  if (filled !== 0 || inFrame) throw new ZstdError(`the data ends inside frame ${frames}: truncated`);
}
