/**
 * Cutting a byte stream into fixed-size records (WAL frames) without holding more than one record.
 * @module
 */

/**
 * Yields consecutive `size`-byte records from `stream`. The yielded array is reused: use it before
 * asking for the next one. Throws if the stream ends inside a record.
 */
export async function* fixedRecords(
  stream: AsyncIterable<Uint8Array>,
  size: number,
): AsyncGenerator<Uint8Array> {
  const record = new Uint8Array(size);
  let filled = 0;
  for await (const chunk of stream) {
    let offset = 0;
    while (offset < chunk.byteLength) {
      const take = Math.min(size - filled, chunk.byteLength - offset);
      record.set(chunk.subarray(offset, offset + take), filled);
      filled += take;
      offset += take;
      if (filled === size) {
        yield record;
        filled = 0;
      }
    }
  }
  if (filled !== 0) throw new RangeError(`stream ended ${filled} bytes into a ${size}-byte record`);
}

/** Size of the buffer downloads are read into. */
const READ_BUFFER = 256 * 1024;

/**
 * Yields the bytes of `stream` through one reused buffer when the stream supports BYOB reads
 * (fetch bodies and files do); the yielded view is only valid until the next one is requested.
 *
 * Iterating a fetch body normally allocates a fresh chunk per read, and the garbage they leave
 * kept a 1 GiB restore about 60 MB above idle; reading into our own buffer keeps it near 15 MB.
 */
export async function* reusedChunks(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  let reader: ReadableStreamBYOBReader;
  try {
    reader = stream.getReader({ mode: "byob" });
  } catch {
    yield* stream; // not a byte stream: plain chunks
    return;
  }
  let buffer = new Uint8Array(READ_BUFFER);
  let finished = false;
  try {
    while (true) {
      const { done, value } = await reader.read(buffer);
      if (done || !value) break;
      yield value;
      buffer = new Uint8Array(value.buffer); // the read transferred the buffer; take it back whole
    }
    finished = true;
  } finally {
    // Stopped early (an error, a mismatch): cancel, so that the download stops too.
    if (finished) reader.releaseLock();
    else await reader.cancel().catch(() => {});
  }
}
