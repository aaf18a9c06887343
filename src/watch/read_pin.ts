/**
 * The read pin R (docs/design.md §3.1): a read-only connection that holds a read transaction at all
 * times, so that no WAL frame walsync has not captured can be checkpointed and overwritten.
 *
 * R may only be (re)started under the write-lock barrier, after every committed frame was shipped
 * or spooled: then a later WAL restart (salt-1 + 1) provably lost nothing. The pin therefore
 * records whether it has been held that way all along; if R had to be started otherwise, or could
 * not be re-started, it says why, and the replica must not accept the next restart as continuous.
 * The one move outside the barrier, {@link ReadPin.advance}, hands R over without a gap and only
 * once everything the old R could see is stored (design §3.3, step 2).
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import { beginRead, endTransaction, openReader } from "../sqlite/database.ts";
import type { WalPosition } from "../wal.ts";
import { testHook } from "./test_hooks.ts";
import type { WalIndexEnd } from "./wal_index.ts";

/** Where the WAL's committed end is now (the WAL index header); null when it cannot tell. */
export type WalEndProbe = () => WalIndexEnd | null;

/**
 * Whether a capture that reached `tip` holds every frame of a read transaction that saw at most
 * `view`: the same cycle and at least as far, or a later cycle (reached only across a restart the
 * capture accepted as continuous), or a view with no frame at all. Pure; unit-tested.
 */
export function capturedThrough(tip: WalPosition | null, view: WalIndexEnd | null): boolean {
  if (view === null) return false; // unknown: never assume
  if (view.mxFrame === 0) return true;
  if (tip === null) return false;
  if (tip.salt1 === view.salt1 && tip.salt2 === view.salt2) return tip.frame >= view.mxFrame;
  // A later cycle: salt-1 grows by one at every restart (wrapping at 2^32).
  const ahead = (tip.salt1 - view.salt1) >>> 0;
  return ahead > 0 && ahead < 0x8000_0000;
}

/** A read transaction held on a database, with a record of whether it was held as the protocol requires. */
export class ReadPin {
  #db: DatabaseSync;
  #broken: string | null = "the read transaction was not yet started under a barrier";
  /** The WAL's committed end read right after R began: at least as far as anything R can see. */
  #view: WalIndexEnd | null = null;

  /** Opens the connection (no transaction yet); `walEnd` reads where the WAL's committed end is. */
  constructor(readonly path: string, private readonly walEnd: WalEndProbe) {
    this.#db = openReader(path);
  }

  /** Starts a read transaction on `db` and records the view (read after: an upper bound of it). */
  #begin(db: DatabaseSync): void {
    beginRead(db);
    this.#view = this.walEnd();
  }

  /**
   * Null while R has been held continuously since it was last started under a barrier; otherwise
   * why continuity through it cannot be proven.
   */
  get broken(): string | null {
    if (this.#broken) return this.#broken;
    if (!this.#db.isTransaction) return "the read transaction was found ended";
    return null;
  }

  /** Starts R without the barrier (e.g. to look at the WAL at start-up): continuity is not proven yet. */
  holdUnproven(): void {
    endTransaction(this.#db);
    this.#broken = "the read transaction was started without a barrier";
    this.#begin(this.#db);
  }

  /**
   * Moves R to the WAL's current end without ever letting go: a second connection starts its read
   * transaction while R is still held, then the old one ends. The proof stays intact (docs/design.md
   * §4): either the new R pins frames (no restart can happen while it is held), or it began on a
   * fully backfilled WAL; the old R kept every frame past its view from being backfilled, so those
   * frames were all inside the old R's view, which `tip` (what is captured and stored) must cover.
   * If it does not (or the view is unknown), nothing is touched and false is returned: a new R on a
   * fully backfilled WAL would let SQLite restart the WAL over frames never captured.
   * Lets a checkpoint outside the barrier backfill up to the new R, so that the one under the
   * barrier has only the last few frames left.
   */
  advance(tip: WalPosition | null): boolean {
    if (!capturedThrough(tip, this.#view)) return false;
    const next = openReader(this.path);
    let view: WalIndexEnd | null;
    try {
      beginRead(next);
      view = this.walEnd();
    } catch (e) {
      next.close();
      throw e;
    }
    const old = this.#db;
    this.#db = next;
    this.#view = view;
    try {
      endTransaction(old);
      old.close();
    } catch { /* the new R holds the pin */ }
    return true;
  }

  /**
   * Ends R, runs `work`, and starts R again in every case. Call it under the barrier only, after
   * every committed frame was shipped or spooled; then R is proven held again.
   *
   * Anything `work` needs (a checkpoint needs a connection that is not in a transaction) must be
   * opened before, so that failing to open it leaves R untouched. If starting R again fails, the
   * pin is marked broken (with the reason) and the error is thrown.
   */
  releaseAndRepin<T>(work: () => T, opts: { checkpoint: boolean }): T {
    this.#broken = "the read transaction was ended";
    endTransaction(this.#db);
    try {
      return work();
    } finally {
      this.#repin(opts.checkpoint);
    }
  }

  #repin(afterCheckpoint: boolean): void {
    try {
      if (afterCheckpoint && testHook("fail-repin")) {
        throw new Error("test hook fail-repin: starting the read transaction failed");
      }
      this.#begin(this.#db);
      this.#broken = null;
    } catch (e) {
      this.#broken = `could not start the read transaction again: ${(e as Error).message}`;
      throw e;
    }
  }

  /** Ends R and closes the connection (the replica closes the database file only after this). */
  close(): void {
    this.#broken = "closed";
    try {
      endTransaction(this.#db);
    } catch { /* closing anyway */ }
    try {
      this.#db.close();
    } catch { /* already closed */ }
  }
}
