/**
 * A local-directory store (`file:///dir`). Each object is a file; its metadata lives in a sidecar
 * `<file>.meta.json`. Writes go to a temporary file that is fsynced and renamed, so a crash never
 * leaves a half object under a real key.
 * @module
 */
import { dirname, join } from "node:path";
import { notFoundError, storageError, WalsyncError } from "../errors.ts";
import { directoryNames, sortedFiles } from "./file_list.ts";
import type { ByteSource } from "./source.ts";
import type { ListedObject, ObjectData, ObjectInfo, Store, WriteCondition } from "./store.ts";

const META_SUFFIX = ".meta.json";
const TEMP_MARK = ".tmp-";

/** A {@link Store} backed by a directory on the local file system. */
export class FileStore implements Store {
  readonly url: string;

  /** @param dir absolute path of the backup directory (created on first write) */
  constructor(readonly dir: string) {
    this.url = `file://${dir}`;
  }

  #path(key: string): string {
    if (key.split("/").some((part) => part === ".." || part === "")) {
      throw new WalsyncError(`invalid object key "${key}"`);
    }
    return join(this.dir, key);
  }

  async put(key: string, body: ByteSource, metadata: Record<string, string>) {
    const size = body.size;
    const path = this.#path(key);
    await Deno.mkdir(dirname(path), { recursive: true }).catch((e) => {
      throw storageError(`cannot create backup directory ${dirname(path)}: ${e.message}`, e);
    });
    const suffix = `${TEMP_MARK}${crypto.randomUUID().slice(0, 8)}`;
    const dataTmp = path + suffix;
    const metaTmp = path + META_SUFFIX + suffix;
    try {
      const file = await Deno.open(dataTmp, { write: true, createNew: true });
      let written = 0;
      try {
        for await (const chunk of body.chunks()) {
          written += chunk.byteLength;
          for (let off = 0; off < chunk.byteLength;) off += await file.write(chunk.subarray(off));
        }
        await file.sync();
      } finally {
        file.close();
      }
      if (written !== size) throw new WalsyncError(`short write for ${key}: ${written} of ${size} bytes`);
      await writeFileSynced(metaTmp, JSON.stringify({ size, metadata }));
      await Deno.rename(metaTmp, path + META_SUFFIX);
      await Deno.rename(dataTmp, path);
      await syncDir(dirname(path));
    } catch (e) {
      await Deno.remove(dataTmp).catch(() => {});
      await Deno.remove(metaTmp).catch(() => {});
      throw e;
    }
  }

  /**
   * Conditional write: create-only through link() (fails if the name exists), replace-if-unchanged
   * under a mutex file, taken with an exclusive create. The etag is the file's identity
   * (inode, mtime, size): every write renames a new file into place.
   */
  async putSmall(
    key: string,
    body: Uint8Array,
    metadata: Record<string, string>,
    condition: WriteCondition,
  ): Promise<string | null> {
    const path = this.#path(key);
    await Deno.mkdir(dirname(path), { recursive: true });
    const temp = `${path}${TEMP_MARK}${crypto.randomUUID().slice(0, 8)}`;
    await writeFileSynced(temp, body);
    try {
      if ("ifNoneMatch" in condition) {
        try {
          await Deno.link(temp, path);
        } catch (e) {
          if (e instanceof Deno.errors.AlreadyExists) return null;
          throw e;
        }
      } else {
        const unlock = await lockFile(`${path}.lock`);
        try {
          if ((await this.#etag(path)) !== condition.ifMatch) return null;
          await Deno.rename(temp, path);
        } finally {
          await unlock();
        }
      }
      await writeFileSynced(
        `${path}${META_SUFFIX}${TEMP_MARK}m`,
        new TextEncoder().encode(JSON.stringify({ size: body.byteLength, metadata })),
      );
      await Deno.rename(`${path}${META_SUFFIX}${TEMP_MARK}m`, path + META_SUFFIX);
      await syncDir(dirname(path));
      return await this.#etag(path);
    } finally {
      await Deno.remove(temp).catch(() => {});
    }
  }

  async #etag(path: string): Promise<string | null> {
    try {
      const stat = await Deno.stat(path);
      return `${stat.ino}-${stat.mtime?.getTime()}-${stat.size}`;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return null;
      throw e;
    }
  }

  async get(key: string): Promise<ObjectData> {
    const info = await this.head(key);
    if (!info) throw notFoundError(`object ${this.url}/${key} does not exist`);
    const file = await Deno.open(this.#path(key), { read: true });
    return { ...info, body: file.readable };
  }

  async head(key: string): Promise<ObjectInfo | null> {
    const path = this.#path(key);
    let size: number;
    try {
      size = (await Deno.stat(path)).size;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return null;
      throw e;
    }
    let metadata: Record<string, string> = {};
    try {
      metadata = JSON.parse(await Deno.readTextFile(path + META_SUFFIX)).metadata ?? {};
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound) && !(e instanceof SyntaxError)) throw e;
    }
    return { key, size, metadata, etag: (await this.#etag(path)) ?? undefined };
  }

  /**
   * Walks only the directory that holds `prefix` (not the whole tree), in key order, skipping whole
   * subdirectories before `startAfter`; large directories are read in pages (src/storage/file_list.ts).
   */
  async *list(prefix: string, startAfter = ""): AsyncIterable<ListedObject> {
    const slash = prefix.lastIndexOf("/");
    yield* this.#walk(slash < 0 ? "" : prefix.slice(0, slash + 1), prefix, startAfter);
  }

  /** Lists directory `base` ("" or ending in "/"): its files and subdirectories merged in key order. */
  async *#walk(base: string, prefix: string, startAfter: string): AsyncGenerator<ListedObject> {
    const path = base ? join(this.dir, base) : this.dir;
    // Keys under `base` compare with startAfter by what follows `base`.
    const after = startAfter.startsWith(base) ? startAfter.slice(base.length) : startAfter < base ? "" : null;
    if (after === null) return; // the whole directory is at or before startAfter
    const namePrefix = prefix.startsWith(base) ? prefix.slice(base.length) : "";
    const dirs = (await directoryNames(path)).map((d) => d + "/").sort()
      .filter((d) =>
        (d > after || after.startsWith(d)) && (d.startsWith(namePrefix) || namePrefix.startsWith(d))
      );
    const keep = (name: string) =>
      name.startsWith(namePrefix) && !name.endsWith(META_SUFFIX) && !name.includes(TEMP_MARK);
    let d = 0;
    for await (const name of sortedFiles(path, after, keep, [`*${META_SUFFIX}`, `*${TEMP_MARK}*`])) {
      while (d < dirs.length && dirs[d] < name) yield* this.#walk(base + dirs[d++], prefix, startAfter);
      const key = base + name;
      try {
        yield { key, size: Deno.statSync(join(this.dir, key)).size };
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e; // deleted since the directory was read
      }
    }
    while (d < dirs.length) yield* this.#walk(base + dirs[d++], prefix, startAfter);
  }

  async delete(key: string): Promise<void> {
    const path = this.#path(key);
    for (const p of [path, path + META_SUFFIX]) {
      await Deno.remove(p).catch((e) => {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      });
    }
  }
}

async function writeFileSynced(path: string, content: string | Uint8Array): Promise<void> {
  const bytes = typeof content === "string" ? new TextEncoder().encode(content) : content;
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    for (let off = 0; off < bytes.byteLength;) off += await file.write(bytes.subarray(off));
    await file.sync();
  } finally {
    file.close();
  }
}

/**
 * A cross-process mutex: an exclusively created lock file. A lock file older than 30 s belongs to
 * a process that died holding it and is broken. Returns the unlock function.
 */
async function lockFile(path: string): Promise<() => Promise<void>> {
  for (let attempt = 0;; attempt++) {
    try {
      (await Deno.open(path, { write: true, createNew: true })).close();
      return () => Deno.remove(path).catch(() => {});
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      const age = Date.now() - ((await Deno.stat(path).catch(() => null))?.mtime?.getTime() ?? Date.now());
      if (age > 30_000) await Deno.remove(path).catch(() => {});
      else if (attempt > 500) throw new Error(`${path} stayed locked`);
      else await new Promise((r) => setTimeout(r, 10));
    }
  }
}

/** fsync a directory so that a rename in it survives a crash. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await Deno.open(dir, { read: true });
  try {
    await handle.sync();
  } catch {
    // Some file systems do not support fsync on directories; the rename is still atomic.
  } finally {
    handle.close();
  }
}
