/**
 * File-system events as hints (docs/design.md §3.5): one `Deno.watchFs` over the `-wal` files of the
 * watched databases, whose events are passed on as "look at this database now". Events can be
 * late, merged or lost; the scheduler keeps a backstop poll, and the WAL header stays the truth.
 *
 * Only the `-wal` files are watched, never the databases' directories: Deno's watcher opens the
 * files an event is about (measured with strace on Deno 2.9.6), and closing any descriptor of the
 * database file drops every POSIX lock this process holds on it, SQLite's shared lock included.
 * The application's last connection could then checkpoint past walsync's read transaction and
 * delete the WAL before walsync read it (measured: a directory watcher lost the pin within 2 s of
 * writes; a watcher on the -wal file alone never did). SQLite holds no lock on the -wal file.
 * @module
 */
import * as log from "../log.ts";
import { testFlag } from "./test_hooks.ts";

/** Receives the hints: `path` is a watched database path. */
export type HintHandler = (path: string) => void;

/** A running watcher over the WAL files of some databases. */
export class WalEvents {
  #watcher: Deno.FsWatcher | null = null;
  /** The inode of each watched WAL when the watcher started (a WAL replaced later is not covered). */
  readonly #watched = new Map<string, number>();
  #available = false;

  private constructor(readonly onHint: HintHandler) {}

  /**
   * Starts watching the `-wal` files of `databases` that exist now. If the platform or a limit
   * refuses, nothing is covered: the caller polls.
   */
  static start(databases: string[], onHint: HintHandler): WalEvents {
    const events = new WalEvents(onHint);
    for (const db of databases) {
      const ino = inodeOf(`${db}-wal`);
      if (ino !== null) events.#watched.set(db, ino);
    }
    if (events.#watched.size === 0) return events;
    try {
      events.#watcher = Deno.watchFs([...events.#watched.keys()].map((db) => `${db}-wal`), {
        recursive: false,
      });
      events.#available = true;
    } catch (e) {
      log.warn(
        `file-system events are unavailable (polling every sync interval instead): ${(e as Error).message}`,
      );
      return events;
    }
    (async () => {
      try {
        const dropAll = testFlag("drop-fs-events");
        for await (const event of events.#watcher!) {
          if (event.kind === "access" || dropAll) continue;
          for (const path of event.paths) {
            if (path.endsWith("-wal")) events.onHint(path.slice(0, -4));
          }
        }
      } catch (e) {
        log.warn(`file-system events stopped (polling every sync interval instead): ${(e as Error).message}`);
      }
      events.#available = false;
    })();
    return events;
  }

  /** Whether events can be expected for `database`: its WAL is the one being watched. */
  covers(database: string): boolean {
    if (!this.#available) return false;
    const ino = this.#watched.get(database);
    return ino !== undefined && inodeOf(`${database}-wal`) === ino;
  }

  /** Stops the watcher. */
  close(): void {
    this.#available = false;
    try {
      this.#watcher?.close();
    } catch { /* closed already */ }
    this.#watcher = null;
  }
}

function inodeOf(path: string): number | null {
  try {
    const stat = Deno.statSync(path);
    return stat.isFile ? stat.ino : null;
  } catch {
    return null;
  }
}
