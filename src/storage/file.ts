/**
 * A local-directory store (`file:///dir`). Each object is a file; its metadata lives in a sidecar
 * `<file>.meta.json`. Writes go to a temporary file that is fsynced and renamed, so a crash never
 * leaves a half object under a real key.
 * @module
 */
import { dirname, join } from "node:path";
import { asUserError, ExitCode, notFoundError, storageError, WalsyncError } from "../errors.ts";
import { directoryNames, filesMatching, smallDirectory, sortedFiles, sortedSmall } from "./file_list.ts";
import type { ByteSource } from "./source.ts";
import type { ListedObject, ObjectData, ObjectInfo, Store, WriteCondition } from "./store.ts";

const META_SUFFIX = ".meta.json";
const TEMP_MARK = ".tmp-";

/** A {@link Store} backed by a directory on the local file system. */
export class FileStore implements Store {
  readonly url: string;

  /** @param dir absolute path of the backup directory (created on first write) */
  constructor(readonly dir: string) {
    this.url = `file://${dir.replaceAll("%", "%25")}`; // a URL that parses back to `dir`
  }

  #path(key: string): string {
    if (key.split("/").some((part) => part === ".." || part === "")) {
      throw new WalsyncError(`invalid object key "${key}"`);
    }
    return join(this.dir, key);
  }

  /** A directory has no use for a Content-MD5: the caller's SHA-256 checks what was written. */
  usesContentMd5(): boolean {
    return false;
  }

  async put(key: string, body: ByteSource, metadata: Record<string, string>) {
    const size = body.size;
    const path = this.#path(key);
    await Deno.mkdir(dirname(path), { recursive: true }).catch((e) => {
      throw storageError(`cannot create backup directory ${dirname(path)}: ${e.message}`, e);
    });
    const suffix = tempSuffix();
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
      throw asUserError(e, `cannot write backup object ${path}`, ExitCode.Storage);
    }
  }

  /**
   * Conditional write: create-only through link() (fails if the name exists), replace-if-unchanged
   * under a mutex file, taken with an exclusive create. The etag is the file's identity
   * (inode, mtime, size): every write renames a new file into place.
   */
  putSmall(
    key: string,
    body: Uint8Array,
    metadata: Record<string, string>,
    condition: WriteCondition,
  ): Promise<string | null> {
    const path = this.#path(key);
    return this.#io(
      `cannot write backup object ${path}`,
      () => this.#putSmall(path, body, metadata, condition),
    );
  }

  async #putSmall(
    path: string,
    body: Uint8Array,
    metadata: Record<string, string>,
    condition: WriteCondition,
  ): Promise<string | null> {
    await Deno.mkdir(dirname(path), { recursive: true });
    const temp = `${path}${tempSuffix()}`;
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
      const metaTemp = `${path}${META_SUFFIX}${tempSuffix()}`;
      await writeFileSynced(
        metaTemp,
        new TextEncoder().encode(JSON.stringify({ size: body.byteLength, metadata })),
      );
      await Deno.rename(metaTemp, path + META_SUFFIX);
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
    const path = this.#path(key);
    const file = await this.#io(`cannot read backup object ${path}`, () => Deno.open(path, { read: true }));
    return { ...info, body: file.readable };
  }

  head(key: string): Promise<ObjectInfo | null> {
    const path = this.#path(key);
    return this.#io(`cannot read backup object ${path}`, () => this.#head(key, path));
  }

  /** Runs `fn`, turning an operating-system error into a storage error (exit 5) "<what>: <reason>". */
  async #io<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw asUserError(e, what, ExitCode.Storage);
    }
  }

  async #head(key: string, path: string): Promise<ObjectInfo | null> {
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
    try {
      yield* this.#walk(slash < 0 ? "" : prefix.slice(0, slash + 1), prefix, startAfter);
    } catch (e) {
      throw asUserError(e, `cannot list backup directory ${this.dir}`, ExitCode.Storage);
    }
  }

  /** Lists directory `base` ("" or ending in "/"): its files and subdirectories merged in key order. */
  async *#walk(base: string, prefix: string, startAfter: string): AsyncGenerator<ListedObject> {
    const path = base ? join(this.dir, base) : this.dir;
    // Keys under `base` compare with startAfter by what follows `base`.
    const after = startAfter.startsWith(base) ? startAfter.slice(base.length) : startAfter < base ? "" : null;
    if (after === null) return; // the whole directory is at or before startAfter
    const namePrefix = prefix.startsWith(base) ? prefix.slice(base.length) : "";
    // A small directory is read once for both its subdirectories and its files.
    const small = smallDirectory(path);
    const dirs = (small ? small.dirs : await directoryNames(path)).map((d) => d + "/").sort()
      .filter((d) =>
        (d > after || after.startsWith(d)) && (d.startsWith(namePrefix) || namePrefix.startsWith(d))
      );
    const keep = (name: string) =>
      name.startsWith(namePrefix) && !name.endsWith(META_SUFFIX) && !name.includes(TEMP_MARK);
    let d = 0;
    const files = small
      ? sortedSmall(small.files, after, keep)
      : sortedFiles(path, after, keep, [`*${META_SUFFIX}`, `*${TEMP_MARK}*`]);
    for await (const name of files) {
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

  /** Removes the leftovers of interrupted uploads under `prefix` (see {@link uploadLeftovers}). */
  async abortIncompleteUploads(prefix: string): Promise<number> {
    const leftovers = await uploadLeftovers(this, prefix);
    for (const key of leftovers) {
      await Deno.remove(join(this.dir, key)).catch((e) => {
        if (!(e instanceof Deno.errors.NotFound)) {
          throw asUserError(e, `cannot delete ${key}`, ExitCode.Storage);
        }
      });
    }
    return leftovers.length;
  }

  async delete(key: string): Promise<void> {
    const path = this.#path(key);
    for (const p of [path, path + META_SUFFIX]) {
      await Deno.remove(p).catch((e) => {
        if (!(e instanceof Deno.errors.NotFound)) {
          throw asUserError(e, `cannot delete ${p}`, ExitCode.Storage);
        }
      });
    }
  }

  /** Removes each object and its metadata sidecar, in the order given. */
  async deleteMany(keys: string[]): Promise<void> {
    for (const key of keys) await this.delete(key);
  }
}

/**
 * A temporary file's suffix: `.tmp-<pid>-<host>-<random>`, so that a later run can tell whether
 * the process that wrote it is gone.
 */
function tempSuffix(): string {
  return `${TEMP_MARK}${Deno.pid}-${HOST}-${crypto.randomUUID().slice(0, 8)}`;
}

const HOST = (() => {
  try {
    return Deno.hostname().replace(/[^A-Za-z0-9.-]/g, "_");
  } catch {
    return "unknown";
  }
})();

/** A temporary file younger than this may belong to an upload in progress in another process. */
const LEFTOVER_AGE_MS = 60_000;

/**
 * Keys of the temporary files under `prefix` of a `file://` store (nothing for other stores) that
 * are leftovers of interrupted uploads (a process killed mid-upload): older than a minute, or
 * written by a process of this host that no longer exists. A temporary file of an upload in
 * progress elsewhere is younger (it is written continuously) and its process alive, so it is
 * never among them.
 */
export async function uploadLeftovers(wrapped: Store, prefix = ""): Promise<string[]> {
  const store = fileStoreOf(wrapped);
  if (!store) return [];
  const found: string[] = [];
  const now = Date.now();
  // Only the folder the prefix can be in is searched, and only temp names come back (a folder of
  // 200,000 segments is never read into memory).
  const base = prefix.includes("/") ? prefix.slice(0, prefix.lastIndexOf("/")) : "";
  const search = async () => {
    const root = base ? join(store.dir, base) : store.dir;
    // `find` on a file lists the file: a store path that is not a directory is said as such here.
    const info = await Deno.stat(root).catch((e) => {
      if (e instanceof Deno.errors.NotFound) return null; // nothing stored yet
      throw e; // e.g. NotADirectory: a part of the path is a file
    });
    if (info && !info.isDirectory) throw new Deno.errors.NotADirectory(`not a directory: ${root}`);
    for await (const relative of filesMatching(root, `*${TEMP_MARK}*`)) {
      const key = base ? `${base}/${relative}` : relative;
      if (!key.startsWith(prefix)) continue;
      const stat = await Deno.stat(join(store.dir, key)).catch(() => null);
      if (!stat) continue; // renamed or removed meanwhile: not a leftover
      const name = key.slice(key.lastIndexOf("/") + 1);
      const writer = /\.tmp-(\d+)-(.+)-[0-9a-f]{8}$/.exec(name);
      const gone = writer !== null && writer[2] === HOST && !processAlive(Number(writer[1]));
      if (gone || now - (stat.mtime?.getTime() ?? now) > LEFTOVER_AGE_MS) found.push(key);
    }
  };
  try {
    await search();
  } catch (e) {
    throw asUserError(e, `cannot list backup directory ${store.dir}`, ExitCode.Storage);
  }
  return found.sort();
}

/** Removes the leftovers of interrupted uploads under `prefix` (`file://` stores only); returns how many. */
export function cleanUploadLeftovers(store: Store, prefix: string): Promise<number> {
  return fileStoreOf(store)?.abortIncompleteUploads(prefix) ?? Promise.resolve(0);
}

/** The {@link FileStore} under `store`'s wrappers (counting, retrying …, each with an `inner`), if any. */
function fileStoreOf(store: Store): FileStore | null {
  let s: Store | undefined = store;
  while (s && !(s instanceof FileStore)) s = (s as { inner?: Store }).inner;
  return s ?? null;
}

/** Whether process `pid` of this host exists (Linux /proc; elsewhere assumed alive: the age rule applies). */
function processAlive(pid: number): boolean {
  if (pid === Deno.pid) return true;
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) return true;
    try {
      Deno.statSync("/proc/self");
      return false;
    } catch {
      return true; // no /proc
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
      else if (attempt > 500) {
        throw storageError(`${path} stayed locked (by another walsync?)`, undefined, true);
      } else await new Promise((r) => setTimeout(r, 10));
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
