/**
 * Continuous replication of one database (docs/design.md §3): a read transaction held at all times
 * pins the WAL; each sync ships the committed frames after the last shipped position as one segment;
 * walsync runs the checkpoints itself under a short write-lock barrier, so that every WAL restart it
 * later sees is provably continuous; anything else is a gap and starts a new generation.
 *
 * The application's write lock (the barrier) is never held across network I/O: everything committed
 * is shipped first without it; the backfill (and its fsyncs) runs without it too, up to a read
 * transaction moved forward hand over hand; under the lock only local work is done (the few frames
 * committed since the upload are copied into a memory spool, the read transaction is moved to the
 * WAL end, a PASSIVE checkpoint with nothing left to write completes), and the spool is uploaded
 * after the lock is released. Every upload is frozen (key, bytes, metadata) until it is confirmed,
 * so a retry never stores a second object for the same place in the chain. Lock hold times are
 * recorded in `stats.barrierMs`.
 * @module
 */
import { stampNow } from "../clock.ts";
import type { DatabaseSync } from "node:sqlite";
import { latestTimeOf, readHistory } from "../log/history.ts";
import { ExitCode, WalsyncError } from "../errors.ts";
import { stateKey } from "../layout.ts";
import * as log from "../log.ts";
import { type DatabaseImage, scanImage } from "../sqlite/image.ts";
import { fileRangeSource } from "../storage/file_range.ts";
import type { Store } from "../storage/store.ts";
import { bytesSource, uploadVerified } from "../storage/upload.ts";
import type { WalPosition } from "../wal.ts";
import { checkpointPassive, openCheckpointer, underWriteLock } from "./barrier.ts";
import { captureCommitted } from "./capture.ts";
import { ChainWriter } from "./chain_writer.ts";
import { DurationSample } from "./duration_sample.ts";
import { type PendingUpload, spoolBudget } from "./outbox.ts";
import { LocalDatabase } from "./local_db.ts";
import { readStoredTip, walStillHolds } from "./resume.ts";
import { testHook, testPause } from "./test_hooks.ts";
import { WalProbe } from "./wal_probe.ts";

/** How often a checkpoint or snapshot retries when the remainder committed meanwhile does not fit the spool. */
const SPOOL_ATTEMPTS = 3;

/**
 * How often a checkpoint backfills without the lock and then looks, under the barrier, whether
 * anything was committed since; the last attempt backfills the rest under the barrier.
 */
const EARLY_CHECKPOINT_ATTEMPTS = 4;

/** Checkpoint rounds postponed in a row before the barrier backfills the last frames itself. */
const CHECKPOINT_MISSES_BEFORE_LOCKED_BACKFILL = 2;

/** Tunables of a replica. */
export interface ReplicaOptions {
  /** Run a checkpoint when the current WAL cycle holds at least this many frames. */
  checkpointFrames: number;
  /** Take a snapshot (same generation) after this many milliseconds. */
  snapshotIntervalMs: number;
  /** How long the barrier waits for the write lock, in milliseconds, before skipping a round. */
  barrierTimeoutMs: number;
  /** How long start() (and a new generation) waits for the write lock before failing (retryable). */
  lockWaitMs?: number;
  /** Aborted at shutdown: waits for the write lock stop at once. */
  signal?: AbortSignal;
}

/** Counters for tests, benchmarks and the log. */
export interface ReplicaStats {
  segments: number;
  snapshots: number;
  generationsStarted: number;
  checkpoints: number;
  failedUploads: number;
  /** How long each barrier held the application's write lock, in milliseconds (bounded sample). */
  barrierMs: DurationSample;
}

/** What the barrier step did: ran (with the image, if asked), found commits since the backfill, or did not run. */
type BarrierOutcome = { image: DatabaseImage | null } | "not-backfilled" | null;

/** One watched database. */
export class Replica {
  readonly stats: ReplicaStats = {
    segments: 0,
    snapshots: 0,
    generationsStarted: 0,
    checkpoints: 0,
    failedUploads: 0,
    barrierMs: new DurationSample(),
  };
  /** The chain being written: position, index, and the frozen uploads not yet confirmed. */
  readonly #chain: ChainWriter;
  /** The database file, WAL index and read pin held open (null while closed). */
  #local: LocalDatabase | null = null;
  #lastSnapshotAt = 0;
  #segmentsSinceSnapshot = 0;
  readonly #probe: WalProbe;
  /** Checkpoint rounds in a row postponed because commits kept arriving (see #checkpoint). */
  #checkpointMisses = 0;
  /** The position of the last checkpoint (so an idle, checkpointed WAL is not checkpointed again). */
  #checkpointedAt: WalPosition | null = null;
  /** Set when continuity is lost; the next sync starts a new generation. */
  #gap: string | null = null;
  /** Set when the database can no longer be replicated at all. */
  failure: string | null = null;
  /** Set while the database file is missing (deleted); it is watched for and restarted as a new generation. */
  unavailable: string | null = null;

  /** True when continuity was lost and the next sync must start a new generation. */
  get gapPending(): boolean {
    return this.#gap !== null && this.unavailable === null;
  }

  constructor(
    readonly path: string,
    readonly name: string,
    readonly store: Store,
    readonly options: ReplicaOptions,
  ) {
    this.#chain = new ChainWriter(store, name, this.stats, (upload) => this.#onStored(upload));
    this.#probe = new WalProbe(`${path}-wal`);
  }

  /** The generation being written. */
  get generation(): number {
    return this.#chain.generation;
  }

  get #walPath(): string {
    return `${this.path}-wal`;
  }

  /** Opens the database (checks that it is a SQLite file in WAL mode) unless it is open already. */
  async open(): Promise<void> {
    if (!this.#local) this.#local = await LocalDatabase.open(this.path);
  }

  /** Closes the connections without shipping anything (after a failed start, or a lost lease). */
  close(): void {
    this.#close();
  }

  /**
   * Opens the database (if not yet open) and either continues the stored generation (if provably
   * continuous) or starts a new one. The caller holds the database's lease. On failure, call close().
   */
  async start(): Promise<void> {
    await this.open();
    // Holding the lease, any incomplete upload under our name is a leftover of a killed process.
    const aborted = await this.store.abortIncompleteUploads?.(`${this.name}/`);
    if (aborted) log.info(`${this.name}: cleaned up ${aborted} incomplete upload(s) left by an earlier run`);
    // One streamed listing, summarised (a long history is never held whole).
    const history = await readHistory(this.store, this.name);
    this.#chain.lastTime = latestTimeOf(history);
    const why = await this.#resume(await readStoredTip(this.store, this.name, history));
    if (why === null) {
      log.info(`${this.name}: continuing generation ${this.generation} at segment #${this.#chain.nextIndex}`);
    } else {
      await this.#newGeneration(why, (history?.generations.at(-1)?.generation ?? 0) + 1);
    }
  }

  /**
   * Continues the stored generation if the WAL still holds its last position: ships what was
   * committed since without any lock, then pins the read transaction under the barrier (spooling
   * the few frames committed meanwhile). Returns null when continuing, else why not.
   */
  async #resume(stored: Awaited<ReturnType<typeof readStoredTip>>): Promise<string | null> {
    if (!stored) return "no stored generation to continue";
    this.#local!.pin.holdUnproven();
    const why = walStillHolds(this.#walPath, stored.tip);
    if (why) return why;
    this.#chain.resume(stored.generation, stored.nextIndex, stored.tip);
    this.#lastSnapshotAt = stored.lastSnapshotAt;
    await this.#shipPending();
    if (!this.#gap) await this.#barrierRound({ mustSucceed: true });
    if (this.#gap) {
      const reason = this.#gap;
      this.#gap = null;
      this.#chain.clear();
      return reason;
    }
    await this.#drain();
    return null;
  }

  /**
   * One sync round: ship new commits, then checkpoint or snapshot when due. Throws on failure; the
   * caller retries with backoff (src/watch/scheduler.ts). Nothing is lost meanwhile: the position
   * does not move and the read transaction pins the WAL. `rescan`: the WAL was written since the
   * last round (a file-system event), so read it even if its size, mtime and next frame header look
   * as before (a commit in place in the same mtime tick).
   */
  async sync(rescan = false): Promise<void> {
    if (this.failure) return;
    if (rescan) this.#probe.rescan();
    // Compared with stored objects' times (the snapshot interval): the stamping clock, not Date.now().
    await this.#syncRound(stampNow());
  }

  /**
   * Whether a {@link sync} now would do anything: the database is gone or replaced, a gap is pending,
   * the WAL may hold something past the shipped position (read even if it looks unchanged, as a
   * rescan), a checkpoint or a snapshot is due. Synchronous and cheap (a stat and two small reads):
   * the backstop poll asks it of idle databases instead of running a sync round for each.
   */
  needsSync(): boolean {
    if (this.failure) return false;
    const stat = statOrNull(this.path);
    if (!stat) return !this.unavailable;
    if (this.unavailable || this.#gap || stat.ino !== this.#local?.dbFile.ino) return true;
    if (this.#chain.pending > 0 || this.#checkpointDue()) return true;
    // As a rescan: frames that look as before count as news (the sync that follows reads them).
    return this.#probe.peek(this.#chain.tip?.position) || this.#snapshotDue(stampNow());
  }

  #checkpointDue(): boolean {
    const position = this.#chain.tip?.position;
    return position !== null && position !== undefined &&
      position.frame >= this.options.checkpointFrames && !samePosition(position, this.#checkpointedAt);
  }

  #snapshotDue(now: number): boolean {
    return now - this.#lastSnapshotAt >= this.options.snapshotIntervalMs && this.#segmentsSinceSnapshot > 0;
  }

  async #syncRound(now: number): Promise<void> {
    const stat = statOrNull(this.path);
    if (!stat) {
      // Deleted (rm app.db*): let go of it, and when a database appears at this path again, start
      // a new generation (nothing of the old one can continue into it).
      if (!this.unavailable) {
        this.unavailable = `${this.path} disappeared`;
        this.#close();
        this.#gap = "the database was deleted and has appeared again";
      }
      return;
    }
    this.unavailable = null;
    if (stat.ino !== this.#local?.dbFile.ino) this.#gap ??= "the database file was replaced";
    if (this.#gap) {
      const reason = this.#gap;
      await this.#reopen();
      // Numbered after everything stored (a one-shot `snapshot` may have added a generation).
      const history = await readHistory(this.store, this.name);
      const newest = Math.max(this.generation, history?.generations.at(-1)?.generation ?? 0);
      await this.#newGeneration(reason, newest + 1);
      return;
    }
    // A checkpoint ships everything committed first (without the lock).
    const checkpointed = this.#checkpointDue() && await this.#checkpoint();
    if (!checkpointed && (this.#chain.pending > 0 || this.#probe.hasNews(this.#chain.tip?.position))) {
      const before = this.stats.segments;
      await this.#shipPending();
      this.#probe.scanned(this.stats.segments !== before);
    }
    if (this.#gap) return;
    if (this.#snapshotDue(now)) {
      await this.#snapshot("scheduled snapshot");
    }
  }

  /** Ships whatever is committed and stops: the in-flight work is finished, the read lock released. */
  async stop(): Promise<void> {
    try {
      if (!this.failure && !this.#gap && this.#local) await this.#shipPending();
      if (!this.failure && !this.unavailable) await this.#writeState();
    } finally {
      this.#close();
    }
  }

  #close(): void {
    this.#local?.close();
    this.#local = null;
    this.#chain.clear();
  }

  async #reopen(): Promise<void> {
    this.#close();
    this.#local = await LocalDatabase.open(this.path);
  }

  #fail(reason: string): void {
    if (this.failure) return;
    this.failure = reason;
    log.error(`${this.name}: stopped replicating: ${reason}`);
    this.#close();
  }

  /**
   * Uploads what is frozen in the outbox, then captures the committed frames past the tip and
   * uploads them as one segment (without any lock). Gaps are recorded in #gap.
   */
  async #shipPending(): Promise<void> {
    await this.#drain();
    const tip = this.#chain.tip;
    if (this.#gap || !tip || !this.#local) return;
    const captured = captureCommitted(this.#walPath, tip, { pinBroken: this.#local.pin.broken });
    if (captured.kind === "gap") {
      this.#gap ??= captured.reason;
      return;
    }
    if (captured.kind !== "frames") return;
    const source = fileRangeSource(this.#walPath, captured.offset, captured.length);
    this.#chain.freezeSegment(captured, source);
    await this.#drain();
  }

  /** Uploads the frozen objects in order (see ChainWriter); a frozen segment overwritten meanwhile is a gap. */
  async #drain(): Promise<void> {
    const lost = await this.#chain.drain();
    if (lost) this.#gap ??= lost;
  }

  /** Bookkeeping once an upload is confirmed. */
  #onStored(upload: PendingUpload): void {
    if (upload.kind === "segment") {
      this.#segmentsSinceSnapshot++;
      log.debug(`${this.name}: segment ${upload.key} ${upload.description}`);
    } else {
      this.#lastSnapshotAt = upload.time;
      this.#segmentsSinceSnapshot = 0;
      log.info(`${this.name}: snapshot ${upload.key} (${upload.description})`);
    }
  }

  /**
   * Runs `work` under the write-lock barrier (see underWriteLock). Returns null without running it if
   * the lock stayed busy, unless `mustSucceed`: then a busy lock is a (retryable) error.
   */
  async #withBarrier<T>(work: () => T, opts: { mustSucceed?: boolean } = {}): Promise<T | null> {
    const waitMs = opts.mustSucceed ? (this.options.lockWaitMs ?? 10_000) : this.options.barrierTimeoutMs;
    const result = await underWriteLock(this.path, work, {
      waitMs,
      signal: this.options.signal,
      onReleased: (ms) => this.stats.barrierMs.add(ms),
    });
    if (result === null && opts.mustSucceed) {
      throw new WalsyncError(
        `${this.path} stayed write-locked by another connection for ${waitMs / 1000} s`,
        ExitCode.Failure,
        { retryable: true },
      );
    }
    return result;
  }

  /**
   * The barrier step shared by checkpoints, snapshots and resuming (docs/design.md §3.3). Under the
   * write lock, local work only: copy the frames committed since the tip into a memory spool, end
   * the read transaction, run a PASSIVE checkpoint if asked, start the read transaction again (now
   * at the WAL end), and scan the snapshot image if asked. The spool joins the outbox as the next
   * segment; the caller uploads it after the lock is released. If the remainder does not fit the
   * spool, the lock is released, the backlog shipped without it, and the step tried again.
   * Returns null if it did not run (lock busy, gap, or the remainder kept growing).
   */
  async #barrierRound(
    opts: {
      /** Run a PASSIVE checkpoint on this connection (opened before: nothing can fail to open once R ended). */
      checkpointer?: DatabaseSync;
      image?: boolean;
      mustSucceed?: boolean;
      /** Give up ("not-backfilled") unless the WAL is fully backfilled already: the checkpoint then writes nothing. */
      onlyIfBackfilled?: boolean;
    },
  ): Promise<BarrierOutcome> {
    for (let attempt = 1;; attempt++) {
      const outcome = await this.#withBarrier(() => {
        // Nothing touched yet: R stays where it is, the frames stay pinned.
        if (opts.onlyIfBackfilled && !this.#local!.walIndex.fullyBackfilled()) {
          return "not-backfilled" as const;
        }
        const spool = captureCommitted(this.#walPath, this.#chain.tip!, {
          pinBroken: this.#local!.pin.broken,
          memoryLimit: spoolBudget.available(),
        });
        if (spool.kind === "gap") {
          this.#gap ??= spool.reason;
          return "gap" as const;
        }
        if (spool.kind === "too-big") return "too-big" as const;
        this.#releaseAndRepin(opts.checkpointer ?? null);
        if (spool.kind === "frames") this.#chain.freezeSegment(spool, bytesSource(spool.bytes!));
        return { image: opts.image ? scanImage(this.#local!.dbFile) : null };
      }, { mustSucceed: opts.mustSucceed });
      if (outcome === null || outcome === "gap") return null;
      if (outcome !== "too-big") return outcome;
      if (opts.onlyIfBackfilled) return "not-backfilled"; // frames were committed since
      if (attempt >= SPOOL_ATTEMPTS && !opts.mustSucceed) {
        log.debug(`${this.name}: too much committed during the barrier for the spool; trying again later`);
        return null;
      }
      await this.#shipPending();
      if (this.#gap) return null;
    }
  }

  /** Ends R, runs a PASSIVE checkpoint on `checkpointer` if given, re-pins R (see ReadPin); a failure to re-pin is a gap. */
  #releaseAndRepin(checkpointer: DatabaseSync | null): void {
    try {
      this.#local!.pin.releaseAndRepin(() => checkpointer && checkpointPassive(checkpointer, this.name), {
        checkpoint: checkpointer !== null,
      });
    } catch (e) {
      const broken = this.#local!.pin.broken;
      if (broken) this.#gap ??= `lost the read transaction: ${broken}`;
      throw e;
    }
  }

  /**
   * Checkpoint (docs/design.md §3.3): ship everything committed without any lock; move R to the WAL
   * end without letting go (ReadPin.advance) and backfill up to it, fsyncs included, still without
   * the lock; then the barrier step (spool, PASSIVE checkpoint, re-pin). The barrier step runs only
   * if nothing was committed since the backfill, so that its checkpoint writes and fsyncs nothing;
   * after a few misses in a row (a writer that never pauses) it backfills the last frames itself,
   * so that the WAL stays bounded. Returns true if the checkpoint ran.
   */
  async #checkpoint(): Promise<boolean> {
    await this.#shipPending();
    if (this.#gap || this.#chain.pending > 0) return false;
    const mayBackfillUnderLock = this.#checkpointMisses >= CHECKPOINT_MISSES_BEFORE_LOCKED_BACKFILL;
    let done: BarrierOutcome = null;
    const checkpointer = openCheckpointer(this.path);
    try {
      for (let attempt = 1; attempt <= EARLY_CHECKPOINT_ATTEMPTS; attempt++) {
        // What the last attempt's R let through (a commit too big for the spool, say) is shipped
        // before R moves again: a new R on a fully backfilled WAL does not stop a restart.
        if (attempt > 1) await this.#shipPending();
        if (this.#gap || this.#chain.pending > 0) return false;
        testPause("before-advance", this.path);
        const advanced = this.#local!.pin.advance(this.#chain.tip?.position ?? null);
        testPause("after-advance", this.path);
        const last = attempt === EARLY_CHECKPOINT_ATTEMPTS || !advanced;
        // Without an advance the backfill below is limited by the old R; the barrier finishes it.
        if (advanced) checkpointPassive(checkpointer, this.name);
        done = await this.#barrierRound({
          checkpointer,
          onlyIfBackfilled: !(last && (mayBackfillUnderLock || !advanced)),
        });
        if (done !== "not-backfilled" || !advanced) break;
      }
    } finally {
      checkpointer.close();
    }
    if (done === "not-backfilled") {
      this.#checkpointMisses++;
      log.debug(`${this.name}: checkpoint postponed: commits kept arriving during the backfill`);
      return false;
    }
    if (!done) {
      if (!this.#gap) log.debug(`${this.name}: checkpoint skipped this round, the database is busy`);
      return false;
    }
    this.#checkpointMisses = 0;
    this.stats.checkpoints++;
    this.#checkpointedAt = this.#chain.tip?.position ?? null;
    if (this.#chain.pending > 0 && testHook("crash-after-checkpoint")) {
      log.warn(
        `${this.name}: test hook crash-after-checkpoint: killing the process before the spool is uploaded`,
      );
      Deno.kill(Deno.pid, "SIGKILL");
    }
    await this.#drain();
    return true;
  }

  /**
   * A snapshot in the current generation: ship first without any lock, then the barrier step
   * (spool, re-pin at the WAL end, scan the image), upload the spool, then stream the image under
   * the read transaction (no checkpoint moves it while the snapshot is in the outbox).
   */
  async #snapshot(reason: string): Promise<void> {
    await this.#shipPending();
    if (this.#gap || this.#chain.pending > 0) return;
    const done = await this.#barrierRound({ image: true });
    if (!done || done === "not-backfilled" || !done.image) return;
    this.#chain.freezeSnapshot(done.image, reason);
    await this.#drain();
  }

  async #newGeneration(reason: string, generation: number): Promise<void> {
    // The first generation of a new backup is routine; any later one means continuity was lost.
    (generation === 1 ? log.info : log.warn)(`${this.name}: starting generation ${generation}: ${reason}`);
    this.#chain.clear(); // anything still pending belongs to the old generation
    const image = await this.#withBarrier(() => {
      this.#releaseAndRepin(null);
      return scanImage(this.#local!.dbFile);
    }, { mustSucceed: true });
    this.#chain.startGeneration(generation);
    this.#gap = null;
    this.stats.generationsStarted++;
    this.#chain.freezeSnapshot(image!, `generation ${generation}`);
    await this.#drain();
    await this.#writeState();
  }

  /** state.json: a hint for `list` and people; restore never depends on it. */
  async #writeState(): Promise<void> {
    const state = {
      name: this.name,
      path: this.path,
      generation: this.generation,
      nextSegmentIndex: this.#chain.confirmedNextIndex,
      updated: new Date().toISOString(),
    };
    try {
      await uploadVerified(
        this.store,
        stateKey(this.name),
        bytesSource(new TextEncoder().encode(JSON.stringify(state))),
      );
    } catch (e) {
      log.warn(`${this.name}: could not write state.json (a hint only): ${(e as Error).message}`);
    }
  }
}

function samePosition(a: WalPosition | null, b: WalPosition | null): boolean {
  return a !== null && b !== null && a.salt1 === b.salt1 && a.salt2 === b.salt2 && a.frame === b.frame;
}

function statOrNull(path: string): Deno.FileInfo | null {
  try {
    // Synchronous: a local stat takes microseconds, the async op ~60 µs of CPU, on every poll.
    return Deno.statSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}
