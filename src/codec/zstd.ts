/**
 * zstd compression of byte streams through node:zlib, as async generators with backpressure.
 * @module
 */
import { once } from "node:events";
import { constants, createZstdCompress, createZstdDecompress } from "node:zlib";
import type { Transform } from "node:stream";

/** zstd level: 3 (the library default) compresses SQLite pages well at hundreds of MB/s. */
const LEVEL = 3;

/**
 * Feeds `input` through `transform` and yields its output. Input chunks are copied before they are
 * handed over (a source may reuse its buffer); output chunks are fresh. Stops the transform and
 * the input if the consumer stops early.
 */
async function* through(transform: Transform, input: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  let stopped = false;
  const closed = once(transform, "close").catch(() => {});
  const feeding = (async () => {
    try {
      for await (const chunk of input) {
        if (stopped) return;
        if (!transform.write(chunk.slice())) await Promise.race([once(transform, "drain"), closed]);
      }
      transform.end();
    } catch (e) {
      transform.destroy(e as Error);
    }
  })();
  try {
    for await (const out of transform) yield out as Uint8Array;
  } finally {
    stopped = true;
    transform.destroy();
    // Not awaited: the feeder may be waiting for the next input chunk; it stops when that comes.
    feeding.catch(() => {});
  }
}

/** Compresses `input` with zstd (with the frame's content checksum). */
export function zstdCompress(input: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  return through(
    createZstdCompress({
      params: { [constants.ZSTD_c_compressionLevel]: LEVEL, [constants.ZSTD_c_checksumFlag]: 1 },
    }),
    input,
  );
}

/** Decompresses zstd `input`; throws on malformed input. */
export function zstdDecompress(input: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  return through(createZstdDecompress(), input);
}
