/**
 * Listing a large directory in key order without holding it: Deno's directory readers (Deno.readDir,
 * node:fs opendir) return every entry at once, which costs ~1.5 KB per entry (300 MB for 200,000
 * segments and their sidecars). Here the names come sorted from `find -print0 | LC_ALL=C sort -z`
 * (sort spills to temporary files when it must, so neither process holds the directory) and are
 * streamed: one pass, memory independent of the directory's size. Where `sh` or `sort` cannot be run,
 * the names are streamed from `find` alone and the directory is read in pages: each scan keeps only
 * the `page` smallest names after a cursor. Where `find` is missing too, Deno's reader is used.
 * @module
 */
import { ExitCode, WalsyncError } from "../errors.ts";

/** Names per page of the fallback: memory bound versus the number of scans of a huge directory. */
const PAGE = 50_000;

/**
 * A directory whose size (st_size) is at most this is read at once with Deno's reader: spawning `find`
 * and `sort` costs milliseconds of CPU per listing, and most directories of a store are small (a
 * database's snapshots, an idle database's segments). The size grows with the entries on every common
 * file system (ext4 and XFS: blocks of entries; tmpfs: 20 bytes per entry; btrfs: twice the names'
 * length; ZFS: one per entry), so this holds a few hundred to 16,384 names, a few MB at most.
 */
export const SMALL_DIR_BYTES = 16 * 1024;

// Windows has a `find` too, which searches text in files: Deno's reader there.
let findMissing = Deno.build.os === "windows";
let sortMissing = Deno.build.os === "windows";

/** The command that prints the files of "$1" (minus the `! -name` patterns after it), sorted by byte. */
const SORTED_FIND =
  'd=$1; shift; find -H "$d" -mindepth 1 -maxdepth 1 -type f "$@" -print0 | LC_ALL=C sort -z';

/** The names of the entries of `dir` of one type ("f" files, "d" directories), streamed in batches. */
async function* entryNames(dir: string, type: "f" | "d", exclude: string[] = []): AsyncGenerator<string[]> {
  if (!findMissing) {
    const args = [
      "-H",
      dir,
      "-mindepth",
      "1",
      "-maxdepth",
      "1",
      "-type",
      type,
      ...excluding(exclude),
      "-print0",
    ];
    const child = spawn("find", args);
    if (child) {
      yield* namesOf(child, dir);
      return;
    }
    findMissing = true;
  }
  yield* denoNames(dir, type);
}

/** `find` arguments that leave out names matching the shell `patterns`. */
function excluding(patterns: string[]): string[] {
  return patterns.flatMap((pattern) => ["!", "-name", pattern]);
}

/** Starts `command`, or returns null when it cannot be run here (missing, or not allowed). */
function spawn(command: string, args: string[]): Deno.ChildProcess | null {
  try {
    return new Deno.Command(command, { args, stdout: "piped", stderr: "piped" }).spawn();
  } catch (e) {
    const unavailable = e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotCapable ||
      e instanceof Deno.errors.PermissionDenied;
    if (!unavailable) throw e;
    return null;
  }
}

/**
 * The NUL-separated paths a child prints, as batches of names (one array per chunk read: per-name
 * work stays synchronous). A directory that does not exist lists nothing; other failures throw.
 */
async function* namesOf(
  child: Deno.ChildProcess,
  dir: string,
  nameOf = (path: string) => path.slice(path.lastIndexOf("/") + 1),
): AsyncGenerator<string[]> {
  const errors = new Response(child.stderr).text();
  const decoder = new TextDecoder();
  let rest = new Uint8Array(0);
  let finished = false;
  try {
    for await (const chunk of child.stdout) {
      const bytes = rest.byteLength ? concat(rest, chunk) : chunk;
      const end = bytes.lastIndexOf(0) + 1;
      const paths = decoder.decode(bytes.subarray(0, end)).split("\0");
      paths.pop();
      yield paths.map(nameOf);
      rest = bytes.slice(end);
    }
    finished = true;
  } finally {
    // The reader stopped early (a listing up to a point in time): stop the child, or it would block on
    // a full pipe for good.
    if (!finished) {
      try {
        child.kill("SIGKILL");
      } catch { /* already exited */ }
      await child.status;
      await errors.catch(() => {});
    }
  }
  const status = await child.status;
  const stderr = await errors;
  if (/No such file or directory|Not a directory/.test(stderr)) return;
  if (status.code !== 0 || stderr.trim()) {
    const reason = /Permission denied/.test(stderr)
      ? "permission denied"
      : stderr.trim() || `exit ${status.code}`;
    throw new WalsyncError(`cannot read backup directory ${dir}: ${reason}`, ExitCode.Storage);
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a);
  out.set(b, a.byteLength);
  return out;
}

async function* denoNames(dir: string, type: "f" | "d"): AsyncGenerator<string[]> {
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (type === "f" ? entry.isFile : entry.isDirectory) yield [entry.name];
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return;
    throw e;
  }
}

const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The paths (relative to `dir`, "/"-separated) of the files at any depth under `dir` whose names match
 * the shell `pattern`, in no order, streamed from `find` (only the matches cross into this process);
 * without `find`, from a walk with Deno's reader.
 */
export async function* filesMatching(dir: string, pattern: string): AsyncGenerator<string> {
  if (!findMissing) {
    const child = spawn("find", ["-H", dir, "-type", "f", "-name", pattern, "-print0"]);
    if (child) {
      for await (const paths of namesOf(child, dir, (path) => path.slice(dir.length + 1))) yield* paths;
      return;
    }
    findMissing = true;
  }
  yield* walkMatching(
    dir,
    "",
    new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`),
  );
}

async function* walkMatching(dir: string, relative: string, name: RegExp): AsyncGenerator<string> {
  try {
    for await (const entry of Deno.readDir(relative ? `${dir}/${relative}` : dir)) {
      const path = relative ? `${relative}/${entry.name}` : entry.name;
      if (entry.isDirectory) yield* walkMatching(dir, path, name);
      else if (entry.isFile && name.test(entry.name)) yield path;
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return;
    throw e;
  }
}

/**
 * The names of the files and subdirectories of `dir` when its size is at most `limit` (see
 * {@link SMALL_DIR_BYTES}), in no order; null for a larger directory. A missing directory is empty.
 */
export function smallDirectory(
  dir: string,
  limit = SMALL_DIR_BYTES,
): { files: string[]; dirs: string[] } | null {
  const files: string[] = [];
  const dirs: string[] = [];
  try {
    if (Deno.statSync(dir).size > limit) return null;
    for (const entry of Deno.readDirSync(dir)) {
      if (entry.isFile) files.push(entry.name);
      else if (entry.isDirectory) dirs.push(entry.name);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return { files, dirs };
    throw e;
  }
  return { files, dirs };
}

/** The names of `files` (a {@link smallDirectory}'s) that `keep` accepts and sort after `after`, in order. */
export function sortedSmall(files: string[], after: string, keep: (name: string) => boolean): string[] {
  return files.filter((name) => name > after && keep(name)).sort(byName);
}

/** The names of the subdirectories of `dir`, in no order (held: a store has few directories). */
export async function directoryNames(dir: string, smallDirBytes = SMALL_DIR_BYTES): Promise<string[]> {
  const small = smallDirectory(dir, smallDirBytes);
  if (small) return small.dirs;
  return (await Array.fromAsync(entryNames(dir, "d"))).flat();
}

/**
 * The names of the files of `dir` that `keep` accepts and that sort after `after`, in order, streamed
 * (see the module doc; `page` is the fallback's page size). `exclude` (shell patterns) lets `find` drop
 * names early; `keep` must reject them too (a small directory is read without `find`).
 */
export async function* sortedFiles(
  dir: string,
  after: string,
  keep: (name: string) => boolean,
  exclude: string[] = [],
  page = PAGE,
  smallDirBytes = SMALL_DIR_BYTES,
): AsyncGenerator<string> {
  const small = smallDirectory(dir, smallDirBytes);
  if (small) {
    yield* sortedSmall(small.files, after, keep);
    return;
  }
  if (!sortMissing && !findMissing) {
    const child = spawn("sh", ["-c", SORTED_FIND, "sh", dir, ...excluding(exclude)]);
    if (child) {
      for await (const names of namesOf(child, dir)) {
        for (const name of names) if (name > after && keep(name)) yield name;
      }
      return;
    }
    sortMissing = true;
  }
  yield* pagedFiles(dir, after, keep, exclude, page);
}

/** The fallback of {@link sortedFiles}: scans of the whole directory, each keeping one page of names. */
export async function* pagedFiles(
  dir: string,
  after: string,
  keep: (name: string) => boolean,
  exclude: string[],
  page: number,
): AsyncGenerator<string> {
  let cursor = after;
  while (true) {
    let best: string[] = [];
    for await (const names of entryNames(dir, "f", exclude)) {
      for (const name of names) if (name > cursor && keep(name)) best.push(name);
      if (best.length >= 2 * page) best = best.sort(byName).slice(0, page);
    }
    best.sort(byName);
    const more = best.length >= page;
    if (more) best.length = page;
    yield* best;
    if (!more) return;
    cursor = best[page - 1];
  }
}
