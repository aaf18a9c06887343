/**
 * A small LZ4 frame decoder (https://github.com/lz4/lz4/blob/dev/doc/lz4_Frame_format.md), enough
 * to read Litestream 0.3.13's `*.wal.lz4` / `*.snapshot.lz4` objects in the benchmarks. Checksums
 * are skipped, not verified; linked blocks are supported (one output buffer for the whole frame).
 * @module
 */

const FRAME_MAGIC = 0x184d2204;

/** A growable output buffer. */
class Output {
  bytes = new Uint8Array(1 << 16);
  length = 0;
  reserve(n: number): void {
    if (this.length + n <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.bytes.subarray(0, this.length));
    this.bytes = next;
  }
  append(chunk: Uint8Array): void {
    this.reserve(chunk.length);
    this.bytes.set(chunk, this.length);
    this.length += chunk.length;
  }
}

function decodeBlock(src: Uint8Array, out: Output): void {
  let i = 0;
  while (i < src.length) {
    const token = src[i++];
    let literals = token >> 4;
    if (literals === 15) {
      let b;
      do {
        b = src[i++];
        literals += b;
      } while (b === 255);
    }
    out.append(src.subarray(i, i + literals));
    i += literals;
    if (i >= src.length) break; // the last sequence has literals only
    const offset = src[i] | (src[i + 1] << 8);
    i += 2;
    let length = token & 15;
    if (length === 15) {
      let b;
      do {
        b = src[i++];
        length += b;
      } while (b === 255);
    }
    length += 4;
    if (offset === 0 || offset > out.length) throw new Error("lz4: bad match offset");
    out.reserve(length);
    const bytes = out.bytes;
    let from = out.length - offset;
    for (let k = 0; k < length; k++) bytes[out.length++] = bytes[from++]; // may overlap: byte by byte
  }
}

/** Decodes one or more concatenated LZ4 frames (skippable frames are skipped). */
export function lz4Decode(input: Uint8Array): Uint8Array {
  const view = new DataView(input.buffer, input.byteOffset, input.byteLength);
  const out = new Output();
  let pos = 0;
  while (pos + 4 <= input.length) {
    const magic = view.getUint32(pos, true);
    if ((magic & 0xfffffff0) === 0x184d2a50) {
      pos += 8 + view.getUint32(pos + 4, true);
      continue;
    }
    if (magic !== FRAME_MAGIC) throw new Error(`lz4: not a frame (magic ${magic.toString(16)})`);
    const flags = input[pos + 4];
    pos += 6 + ((flags & 0x08) ? 8 : 0) + ((flags & 0x01) ? 4 : 0) + 1; // FLG BD [size] [dict] HC
    const blockChecksum = (flags & 0x10) !== 0;
    for (;;) {
      const word = view.getUint32(pos, true);
      pos += 4;
      if (word === 0) break; // end mark
      const size = word & 0x7fffffff;
      const block = input.subarray(pos, pos + size);
      pos += size + (blockChecksum ? 4 : 0);
      if (word & 0x80000000) out.append(block);
      else decodeBlock(block, out);
    }
    if (flags & 0x04) pos += 4; // content checksum
  }
  return out.bytes.subarray(0, out.length);
}
