/**
 * A {@link ByteSource} over a byte range of a local file, read in 256 KiB chunks.
 * @module
 */
import { closeFd, openForRead, readAt } from "../wal.ts";
import type { ByteSource } from "./source.ts";

const CHUNK = 256 * 1024;

/** Reads `length` bytes of `path` from `offset` into one reused buffer; errors if the file is shorter. */
export function fileRangeSource(path: string, offset: number, length: number): ByteSource {
  return {
    size: length,
    async *chunks() {
      const fd = openForRead(path);
      if (fd === null) throw new Error(`${path} does not exist`);
      try {
        const buffer = new Uint8Array(Math.min(CHUNK, length));
        for (let done = 0; done < length;) {
          const chunk = buffer.subarray(0, Math.min(CHUNK, length - done));
          const n = readAt(fd, offset + done, chunk);
          if (n !== chunk.byteLength) throw new Error(`${path} is shorter than expected`);
          done += n;
          yield chunk;
        }
      } finally {
        closeFd(fd);
      }
    },
  };
}
