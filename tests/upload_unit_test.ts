/**
 * The verified upload's passes (src/storage/upload.ts): which digests are computed before the body
 * is sent, and that every shortcut still ends with the bytes sent being compared with the SHA-256
 * stored in the metadata. On a real directory store (file://); a wrapper notes what `put` was given.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { ObjectCodec } from "../src/codec/codec.ts";
import { FORMAT } from "../src/metadata.ts";
import { FileStore } from "../src/storage/file.ts";
import { multipartThresholdOf } from "../src/storage/s3_client.ts";
import type { ByteSource } from "../src/storage/source.ts";
import type { Store } from "../src/storage/store.ts";
import { uploadVerified } from "../src/storage/upload.ts";

/** A FileStore that says whether it uses a Content-MD5 as told, and notes what put() received. */
function observedStore(dir: string, codec: ObjectCodec, usesMd5: boolean) {
  const inner = new FileStore(dir);
  const seen: { md5: (string | undefined)[] } = { md5: [] };
  const store: Store = {
    url: inner.url,
    codec,
    usesContentMd5: () => usesMd5,
    put: (key: string, body: ByteSource, metadata: Record<string, string>, md5?: string) => {
      seen.md5.push(md5);
      return inner.put(key, body, metadata);
    },
    get: (key) => inner.get(key),
    head: (key) => inner.head(key),
    list: (prefix, startAfter) => inner.list(prefix, startAfter),
    putSmall: (key, body, metadata, condition) => inner.putSmall(key, body, metadata, condition),
    delete: (key) => inner.delete(key),
    deleteMany: (keys) => inner.deleteMany(keys),
  };
  return { store, seen };
}

/** A source of `size` pseudo-random bytes (half compressible) that counts how often it is read. */
function countedSource(size: number, changeOnRead?: number) {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = i % 2 ? (i * 2654435761) >>> 24 : 7;
  const source = {
    reads: 0,
    size,
    async *chunks() {
      source.reads++;
      const copy = bytes.slice();
      if (source.reads === changeOnRead) copy[size >> 1] ^= 0xff; // the content changed meanwhile
      for (let off = 0; off < size; off += 65536) yield copy.subarray(off, Math.min(size, off + 65536));
    },
  };
  return { source, bytes };
}

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const META = { format: FORMAT, kind: "segment" };

for (const usesMd5 of [true, false]) {
  Deno.test(`upload, zstd (${usesMd5 ? "single PUT" : "no Content-MD5"}): the content is read once; stored SHA-256 checked by a second reader`, async () => {
    const dir = await Deno.makeTempDir();
    try {
      const { store, seen } = observedStore(dir, { compression: "zstd", key: null }, usesMd5);
      const { source, bytes } = countedSource(3 * 1024 * 1024 + 17); // above the in-memory limit
      const result = await uploadVerified(store, "db/wal/x", source, META);
      assert.equal(source.reads, 1, "the content is read once (compressed into the temporary file)");
      assert.equal(seen.md5.length, 1);
      assert.equal(seen.md5[0] !== undefined, usesMd5, "a Content-MD5 only where the store uses one");
      const stored = await Deno.readFile(`${dir}/db/wal/x`);
      assert.equal(result.sha256, sha256(stored));
      assert.equal(result.contentSha256, sha256(bytes));
      assert.ok(stored.byteLength < bytes.byteLength, "compressed");
      if (usesMd5) assert.equal(seen.md5[0], createHash("md5").update(stored).digest("base64"));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  Deno.test(`upload, stored as is (${usesMd5 ? "single PUT" : "no Content-MD5"}): content that changes between the digest pass and the upload is refused and removed`, async () => {
    const dir = await Deno.makeTempDir();
    try {
      const { store, seen } = observedStore(dir, { compression: "none", key: null }, usesMd5);
      const intact = countedSource(200_000);
      const result = await uploadVerified(store, "db/wal/ok", intact.source, META);
      assert.equal(intact.source.reads, 2, "a digest pass, then the body");
      assert.equal(result.sha256, sha256(intact.bytes));
      assert.equal(seen.md5[0] !== undefined, usesMd5);

      const changing = countedSource(200_000, 2);
      await assert.rejects(
        uploadVerified(store, "db/wal/changed", changing.source, META),
        /content changed while uploading/,
      );
      await assert.rejects(Deno.stat(`${dir}/db/wal/changed`), Deno.errors.NotFound);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("S3: a Content-MD5 is used up to the multipart threshold (capped at 5 GiB), not above", () => {
  assert.equal(multipartThresholdOf({}), 256 * 1024 * 1024);
  assert.equal(multipartThresholdOf({ multipartThreshold: 8 * 1024 * 1024 }), 8 * 1024 * 1024);
  assert.equal(multipartThresholdOf({ multipartThreshold: 10 * 1024 ** 3 }), 5 * 1024 ** 3);
});
