/**
 * A local-directory store (`file:///dir`). Each object is a file; its metadata lives in a sidecar
 * `<file>.meta.json`. Writes go to a temporary file that is fsynced and renamed, so a crash never
 * leaves a half object under a real key.
 * @module
 */
import { dirname, join } from "node:path";
import { notFoundError, storageError, WalsyncError } from "../errors.ts";
import type { ByteSource } from "./source.ts";
import type { ListedObject, ObjectData, ObjectInfo, Store } from "./store.ts";

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
    return { key, size, metadata };
  }

  async *list(prefix: string): AsyncIterable<ListedObject> {
    const all: ListedObject[] = [];
    await this.#walk("", all);
    all.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    for (const entry of all) if (entry.key.startsWith(prefix)) yield entry;
  }

  async #walk(relative: string, out: ListedObject[]): Promise<void> {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(join(this.dir, relative)));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return;
      throw e;
    }
    for (const entry of entries) {
      const key = relative ? `${relative}/${entry.name}` : entry.name;
      if (entry.isDirectory) await this.#walk(key, out);
      else if (entry.isFile && !entry.name.endsWith(META_SUFFIX) && !entry.name.includes(TEMP_MARK)) {
        out.push({ key, size: (await Deno.stat(join(this.dir, key))).size });
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

async function writeFileSynced(path: string, text: string): Promise<void> {
  const file = await Deno.open(path, { write: true, createNew: true });
  try {
    await file.write(new TextEncoder().encode(text));
    await file.sync();
  } finally {
    file.close();
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
