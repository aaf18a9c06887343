/**
 * File-system events as hints (docs/design.md): one `Deno.watchFs` over the distinct directories of
 * the watched databases (not recursive), whose events on `<db>`, `<db>-wal` are passed on as
 * "look at this database now". Events can be late, merged or lost (an overflow shows as a rescan);
 * the scheduler keeps a slow backstop poll, and the WAL header stays the truth.
 * @module
 */
import { basename, dirname } from "node:path";
import * as log from "../log.ts";

/** Receives the hints: `path` is a watched database path; `null` means "any of them" (a rescan). */
export type HintHandler = (path: string | null) => void;

/** A running watcher over the directories of some database paths. */
export class DirectoryEvents {
  #watcher: Deno.FsWatcher | null = null;
  /** Whether events are flowing; false if the watcher could not be started or has failed. */
  available = false;

  private constructor(readonly databases: Set<string>, readonly onHint: HintHandler) {}

  /**
   * Starts watching the directories of `paths` (absolute database paths). If the platform or a
   * limit refuses, returns a watcher with `available` false: the caller then polls.
   * `onLost` is called if the watcher fails later.
   */
  static start(paths: string[], onHint: HintHandler, onLost: () => void): DirectoryEvents {
    const events = new DirectoryEvents(new Set(paths), onHint);
    // A directory that does not exist (yet) cannot be watched: its databases are polled.
    const directories = [...new Set(paths.map((p) => dirname(p)))].filter(isDirectory);
    if (directories.length === 0) return events;
    try {
      events.#watcher = Deno.watchFs(directories, { recursive: false });
      events.available = true;
    } catch (e) {
      log.warn(
        `file-system events are unavailable (polling every sync interval instead): ${(e as Error).message}`,
      );
      return events;
    }
    (async () => {
      try {
        for await (const event of events.#watcher!) events.#dispatch(event);
      } catch (e) {
        log.warn(`file-system events stopped (polling every sync interval instead): ${(e as Error).message}`);
      }
      if (events.available) {
        events.available = false;
        onLost();
      }
    })();
    return events;
  }

  #dispatch(event: Deno.FsEvent): void {
    if (event.kind === "other" || event.flag === "rescan") return this.onHint(null);
    if (event.kind === "access") return;
    for (const path of event.paths) {
      const database = databaseOf(path);
      if (database !== null && this.databases.has(database)) this.onHint(database);
    }
  }

  /** Stops the watcher. */
  close(): void {
    this.available = false;
    try {
      this.#watcher?.close();
    } catch { /* closed already */ }
    this.#watcher = null;
  }
}

/** The database a changed file belongs to: `<db>-wal` and `<db>` itself (not -shm, which is mmapped). */
function databaseOf(path: string): string | null {
  if (path.endsWith("-wal")) return path.slice(0, -4);
  if (path.endsWith("-shm") || path.endsWith("-journal") || basename(path).startsWith(".")) return null;
  return path;
}

function isDirectory(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}
