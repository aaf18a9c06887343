/**
 * Cutting a byte stream into fixed-size records (WAL frames) without holding more than one record.
 * @module
 */

/**
 * Yields consecutive `size`-byte records from `stream`. The yielded array is reused: use it before
 * asking for the next one. Throws if the stream ends inside a record.
 */
export async function* fixedRecords(
  stream: ReadableStream<Uint8Array>,
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
