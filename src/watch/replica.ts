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
 * so a retry never stores a second object for the same place in the chain. The steps under the lock
 * (checkpoint, snapshot barrier, re-pin) are in src/watch/barrier_steps.ts.
 * @module
 */
import { stampNow } from "../clock.ts";
import { latestTimeOf, readHistory } from "../log/history.ts";
import { stateKey } from "../layout.ts";
import * as log from "../log.ts";
import { scanImage } from "../sqlite/image.ts";
import { fileRangeSource } from "../storage/file_range.ts";
import type { Store } from "../storage/store.ts";
import { bytesSource, uploadVerified } from "../storage/upload.ts";
import type { WalPosition } from "../wal.ts";
import { BarrierSteps } from "./barrier_steps.ts";
import { captureCommitted } from "./capture.ts";
import { ChainWriter } from "./chain_writer.ts";
import { DurationSample } from "./duration_sample.ts";
import type { PendingUpload } from "./outbox.ts";
import { LocalDatabase } from "./local_db.ts";
import { readStoredTip, walStillHolds } from "./resume.ts";
import { WalProbe } from "./wal_probe.ts";

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
  /** The checkpoint and the other steps under the application's write lock. */
  readonly #steps: BarrierSteps;
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
    this.#steps = new BarrierSteps({
      path,
      name,
      walPath: `${path}-wal`,
      options,
      stats: this.stats,
      chain: this.#chain,
      local: () => this.#local!,
      gap: () => this.#gap,
      noteGap: (reason: string) => void (this.#gap ??= reason),
      shipPending: () => this.#shipPending(),
      drain: () => this.#drain(),
    });
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
    if (!this.#gap) await this.#steps.round({ mustSucceed: true });
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
      position.frame >= this.options.checkpointFrames && !samePosition(position, this.#steps.checkpointedAt);
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
    const checkpointed = this.#checkpointDue() && await this.#steps.checkpoint();
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
   * A snapshot in the current generation: ship first without any lock, then the barrier step
   * (spool, re-pin at the WAL end, scan the image), upload the spool, then stream the image under
   * the read transaction (no checkpoint moves it while the snapshot is in the outbox).
   */
  async #snapshot(reason: string): Promise<void> {
    await this.#shipPending();
    if (this.#gap || this.#chain.pending > 0) return;
    const done = await this.#steps.round({ image: true });
    if (!done || done === "not-backfilled" || !done.image) return;
    this.#chain.freezeSnapshot(done.image, reason);
    await this.#drain();
  }

  async #newGeneration(reason: string, generation: number): Promise<void> {
    // The first generation of a new backup is routine; any later one means continuity was lost.
    (generation === 1 ? log.info : log.warn)(`${this.name}: starting generation ${generation}: ${reason}`);
    this.#chain.clear(); // anything still pending belongs to the old generation
    const image = await this.#steps.withBarrier(() => {
      this.#steps.releaseAndRepin(null);
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
