/**
 * Listing a large directory in key order without holding it: Deno's directory readers (Deno.readDir,
 * node:fs opendir) return every entry at once, which costs ~1.5 KB per entry (300 MB for 200,000
 * segments and their sidecars). Here the names are streamed from `find -print0` and the directory is
 * read in pages: each scan keeps only the `page` smallest names after a cursor, so memory is bounded
 * by the page size, whatever the size of the directory. Where `find` is missing, falls back to Deno's
 * reader.
 * @module
 */
import { ExitCode, WalsyncError } from "../errors.ts";

/** Names per page: memory bound versus the number of scans of a huge directory. */
const PAGE = 50_000;

let findMissing = false;

/** The names of the entries of `dir` of one type ("f" files, "d" directories), streamed in batches. */
async function* entryNames(dir: string, type: "f" | "d", exclude: string[] = []): AsyncGenerator<string[]> {
  if (!findMissing) {
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command("find", {
        args: [
          dir,
          "-mindepth",
          "1",
          "-maxdepth",
          "1",
          "-type",
          type,
          ...exclude.flatMap((pattern) => ["!", "-name", pattern]),
          "-print0",
        ],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (e) {
      // No `find` here, or no permission to run programs: Deno's reader still works (holding the directory).
      const unavailable = e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotCapable ||
        e instanceof Deno.errors.PermissionDenied;
      if (!unavailable) throw e;
      findMissing = true;
      yield* denoNames(dir, type);
      return;
    }
    const errors = new Response(child.stderr).text();
    const decoder = new TextDecoder();
    let rest = new Uint8Array(0);
    for await (const chunk of child.stdout) {
      const bytes = rest.byteLength ? concat(rest, chunk) : chunk;
      const end = bytes.lastIndexOf(0) + 1;
      // One decode per chunk, one array of names per chunk: per-name work stays synchronous.
      const paths = decoder.decode(bytes.subarray(0, end)).split("\0");
      paths.pop();
      yield paths.map((path) => path.slice(path.lastIndexOf("/") + 1));
      rest = bytes.slice(end);
    }
    const status = await child.status;
    const stderr = await errors;
    if (status.code !== 0) {
      if (/No such file or directory|Not a directory/.test(stderr)) return;
      const reason = /Permission denied/.test(stderr) ? "permission denied" : stderr.trim();
      throw new WalsyncError(`cannot read backup directory ${dir}: ${reason}`, ExitCode.Storage);
    }
    return;
  }
  yield* denoNames(dir, type);
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

/** The names of the subdirectories of `dir`, in no order (held: a store has few directories). */
export async function directoryNames(dir: string): Promise<string[]> {
  return (await Array.fromAsync(entryNames(dir, "d"))).flat();
}

/**
 * The names of the files of `dir` that `keep` accepts and that sort after `after`, in order, read a
 * page at a time (see the module doc). `exclude` (shell patterns) lets `find` drop names early.
 */
export async function* sortedFiles(
  dir: string,
  after: string,
  keep: (name: string) => boolean,
  exclude: string[] = [],
  page = PAGE,
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
