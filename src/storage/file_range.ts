/**
 * A {@link ByteSource} over a byte range of a local file, streamed in 1 MiB reads.
 * @module
 */
import { closeFd, openForRead, readAt } from "../wal.ts";
import type { ByteSource } from "./upload.ts";

const CHUNK = 1 << 20;

/** Streams `length` bytes of `path` from `offset`; errors if the file is shorter. */
export function fileRangeSource(path: string, offset: number, length: number): ByteSource {
  return {
    size: length,
    stream() {
      let fd: number | null = null;
      let done = 0;
      return new ReadableStream<Uint8Array>({
        async pull(controller) {
          try {
            fd ??= openForRead(path);
            if (fd === null) throw new Error(`${path} does not exist`);
            if (done >= length) {
              closeFd(fd);
              fd = null;
              controller.close();
              return;
            }
            const chunk = new Uint8Array(Math.min(CHUNK, length - done));
            const n = readAt(fd, offset + done, chunk);
            if (n !== chunk.byteLength) throw new Error(`${path} is shorter than expected`);
            done += n;
            controller.enqueue(chunk);
          } catch (e) {
            if (fd !== null) closeFd(fd);
            fd = null;
            throw e;
          }
        },
        cancel() {
          if (fd !== null) closeFd(fd);
          fd = null;
        },
      });
    },
  };
}
