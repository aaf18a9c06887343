/**
 * A local-directory store (`file:///dir`). Each object is a file; its metadata lives in a sidecar
 * `<file>.meta.json`. Writes go to a temporary file that is fsynced and renamed, so a crash never
 * leaves a half object under a real key.
 * @module
 */
import { dirname, join } from "node:path";
import { notFoundError, storageError, WalsyncError } from "../errors.ts";
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
   * Walks only the directory that holds `prefix` (not the whole tree), one directory at a time in key
   * order, skipping whole subdirectories before `startAfter`. Holds the names of one directory.
   */
  async *list(prefix: string, startAfter = ""): AsyncIterable<ListedObject> {
    const slash = prefix.lastIndexOf("/");
    yield* this.#walk(slash < 0 ? "" : prefix.slice(0, slash), prefix, startAfter);
  }

  async *#walk(relative: string, prefix: string, startAfter: string): AsyncGenerator<ListedObject> {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(relative ? join(this.dir, relative) : this.dir));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return;
      throw e;
    }
    // A directory's keys all start with "<name>/": sorting it as that string keeps key order.
    const named = entries.filter((e) =>
      e.isDirectory || (e.isFile && !e.name.endsWith(META_SUFFIX) &&
        !e.name.includes(TEMP_MARK))
    )
      .map((e) => ({
        key: (relative ? `${relative}/` : "") + e.name + (e.isDirectory ? "/" : ""),
        dir: e.isDirectory,
      }));
    entries.length = 0;
    named.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    for (const { key, dir } of named) {
      if (!key.startsWith(prefix) && !prefix.startsWith(key)) continue;
      if (dir) {
        // Skip a subtree that lies wholly at or before startAfter.
        if (key <= startAfter && !startAfter.startsWith(key)) continue;
        yield* this.#walk(key.slice(0, -1), prefix, startAfter);
      } else if (key > startAfter && key.startsWith(prefix)) {
        try {
          yield { key, size: (await Deno.stat(join(this.dir, key))).size };
        } catch (e) {
          if (!(e instanceof Deno.errors.NotFound)) throw e; // deleted since the directory was read
        }
      }
    }
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
