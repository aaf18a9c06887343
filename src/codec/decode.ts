/**
 * Decoding a stored object's body back into its content, checking every layer (docs/design.md
 * §4.2): the SHA-256 and size of the stored bytes, each encrypted chunk's tag, the zstd
 * frame, and that the content is no larger than its metadata says. The caller hashes the content
 * it reads and compares it with `content-sha256`.
 * @module
 */
import { corruptError, usageError } from "../errors.ts";
import { newSha256 } from "../hash.ts";
import type { Store } from "../storage/store.ts";
import { decryptChunks, DecryptError } from "./aead.ts";
import type { StoredForm } from "./codec.ts";
import { zstdDecompress, ZstdError } from "./zstd.ts";

/** Reports damage of the object being decoded; throws (the caller's damage error). */
export type DamageReporter = (reason: "corrupt" | "truncated", message: string) => never;

/** Damage found while decoding; turned into the caller's error at the end of the pipeline. */
class CodecDamage extends Error {
  constructor(readonly reason: "corrupt" | "truncated", message: string) {
    super(message);
  }
}

/** An error of the download itself (network), passed through as is. */
class RawError extends Error {
  constructor(readonly original: unknown) {
    super("download failed");
  }
}

/** True when `store` can decode an object stored in `form` (it is not encrypted, or the key is there). */
export function canDecode(store: Store, form: StoredForm): boolean {
  return !form.encrypted || (store.codec?.key ?? null) !== null;
}

/**
 * Checks that `store` holds the key `form` needs, before anything is downloaded.
 * @throws WalsyncError exit 2 when the object is encrypted and no key was given, exit 4 when the
 *   key given is not the one it was encrypted with.
 */
export function checkKey(store: Store, objectKey: string, form: StoredForm): void {
  if (!form.encrypted) return;
  const key = store.codec?.key ?? null;
  const where = `${store.url}/${objectKey}`;
  if (!key) {
    throw usageError(
      `${where} is encrypted (key id ${form.keyId}): give its key in WALSYNC_ENCRYPTION_KEY or --encryption-key-file`,
    );
  }
  if (key.id !== form.keyId) {
    throw corruptError(
      `${where} was encrypted with key id ${form.keyId}, but the key given has id ${key.id}: wrong key`,
    );
  }
}

/** Streams `raw` through, hashing it; reports a stored size or SHA-256 different from `form`'s. */
async function* checkedStored(raw: ReadableStream<Uint8Array>, form: StoredForm): AsyncGenerator<Uint8Array> {
  const hash = newSha256();
  let size = 0;
  const reader = raw.getReader();
  let done = false;
  try {
    while (true) {
      let next: ReadableStreamReadResult<Uint8Array>;
      try {
        next = await reader.read();
      } catch (e) {
        throw new RawError(e);
      }
      if (next.done) break;
      hash.update(next.value);
      size += next.value.byteLength;
      yield next.value;
    }
    done = true;
  } finally {
    if (done) reader.releaseLock();
    else await reader.cancel().catch(() => {});
  }
  if (size !== form.storedLength) {
    throw new CodecDamage(
      size < form.storedLength ? "truncated" : "corrupt",
      `${size} stored bytes, its metadata says ${form.storedLength}`,
    );
  }
  const actual = hash.digest("hex");
  if (actual !== form.sha256) {
    throw new CodecDamage(
      "corrupt",
      `SHA-256 mismatch of the stored bytes (stored ${form.sha256}, content ${actual})`,
    );
  }
}

/** Fails when the decoded content grows past its recorded length (also bounds a decompression bomb). */
async function* bounded(input: AsyncIterable<Uint8Array>, limit: number): AsyncGenerator<Uint8Array> {
  let size = 0;
  for await (const chunk of input) {
    size += chunk.byteLength;
    if (size > limit) throw new CodecDamage("corrupt", `decodes to more than its content-length ${limit}`);
    yield chunk;
  }
}

/**
 * Runs a decoding pipeline over `raw` as a stream, turning what went wrong into `onDamage` (download
 * errors pass as they are). Cancelling the stream cancels the download too, also before the
 * pipeline started reading it.
 */
function toStream(
  pipeline: AsyncGenerator<Uint8Array>,
  raw: ReadableStream<Uint8Array>,
  onDamage: DamageReporter,
): ReadableStream<Uint8Array> {
  const translated = (async function* () {
    try {
      yield* pipeline;
    } catch (e) {
      if (e instanceof RawError) throw e.original;
      if (e instanceof CodecDamage) onDamage(e.reason, e.message);
      if (e instanceof DecryptError) onDamage(e.truncated ? "truncated" : "corrupt", e.message);
      if (e instanceof ZstdError) onDamage("corrupt", `does not decompress (zstd ${e.message})`);
      throw e;
    }
  })();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await translated.next();
      if (next.done) controller.close();
      else controller.enqueue(next.value);
    },
    async cancel() {
      await translated.return(undefined);
      if (!raw.locked) await raw.cancel().catch(() => {});
    },
  }, { highWaterMark: 0 });
}

/**
 * The content of an object whose body is `raw` and whose metadata decoded to `form`: `raw` itself
 * when stored as is (the caller's content digest then covers the stored bytes), otherwise `raw`
 * verified (size, SHA-256), decrypted and decompressed. Damage surfaces as `onDamage` while the
 * stream is read; a missing or wrong key throws at once (see {@link checkKey}), after releasing `raw`.
 */
export function decodeBody(
  store: Store,
  objectKey: string,
  form: StoredForm,
  raw: ReadableStream<Uint8Array>,
  onDamage: DamageReporter,
): ReadableStream<Uint8Array> {
  try {
    checkKey(store, objectKey, form);
  } catch (e) {
    raw.cancel().catch(() => {});
    throw e;
  }
  if (!form.encrypted && form.compression === "none") return raw;
  let stream: AsyncGenerator<Uint8Array> = checkedStored(raw, form);
  if (form.encrypted) stream = decryptChunks(store.codec!.key!, stream);
  if (form.compression === "zstd") stream = zstdDecompress(stream);
  return toStream(bounded(stream, form.contentLength), raw, onDamage);
}

/**
 * For `verify` without the key: checks the stored bytes of `raw` (size and SHA-256) and yields
 * nothing, since the content cannot be read.
 */
export function storedBytesOnly(
  form: StoredForm,
  raw: ReadableStream<Uint8Array>,
  onDamage: DamageReporter,
): ReadableStream<Uint8Array> {
  const drain = async function* (): AsyncGenerator<Uint8Array> {
    for await (const _ of checkedStored(raw, form)) { /* hash only */ }
    yield* []; // no content without the key
  };
  return toStream(drain(), raw, onDamage);
}
