/**
 * Content to upload, produced in chunks into reused buffers so that memory stays flat however
 * large the object: a chunk is only valid until the consumer asks for the next one.
 * @module
 */

/** Content that can be read more than once (a file range, a database image under a read lock). */
export interface ByteSource {
  readonly size: number;
  /**
   * Yields the whole content in order. Each yielded chunk may be overwritten as soon as the next
   * one is requested: consume it (hash it, write it out and wait for the write) before that.
   * Every call yields the same bytes.
   */
  chunks(): AsyncIterable<Uint8Array>;
}

/** A {@link ByteSource} over bytes already in memory (small objects only). */
export function bytesSource(bytes: Uint8Array): ByteSource {
  return {
    size: bytes.byteLength,
    async *chunks() {
      yield bytes;
    },
  };
}

/** Wraps `source` so that `observe` sees every chunk before the consumer does. */
export function observedSource(source: ByteSource, observe: (chunk: Uint8Array) => void): ByteSource {
  return {
    size: source.size,
    async *chunks() {
      for await (const chunk of source.chunks()) {
        observe(chunk);
        yield chunk;
      }
    },
  };
}
