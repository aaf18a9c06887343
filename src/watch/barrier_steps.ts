/**
 * The steps of a replica that take the application's write lock (docs/design.md §3.3): the barrier
 * round shared by checkpoints, snapshots and resuming, and the checkpoint built around it. Under the
 * lock only local work is done; every upload happens before or after, through the replica
 * ({@link ReplicaCore}). Lock hold times are recorded in `stats.barrierMs`.
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import { ExitCode, WalsyncError } from "../errors.ts";
import * as log from "../log.ts";
import { type DatabaseImage, scanImage } from "../sqlite/image.ts";
import { bytesSource } from "../storage/upload.ts";
import type { WalPosition } from "../wal.ts";
import { checkpointPassive, openCheckpointer, underWriteLock } from "./barrier.ts";
import { captureCommitted } from "./capture.ts";
import type { ChainWriter } from "./chain_writer.ts";
import type { DurationSample } from "./duration_sample.ts";
import type { LocalDatabase } from "./local_db.ts";
import { spoolBudget } from "./outbox.ts";
import { testHook, testPause } from "./test_hooks.ts";

/** How often a checkpoint or snapshot retries when the remainder committed meanwhile does not fit the spool. */
const SPOOL_ATTEMPTS = 3;

/**
 * How often a checkpoint backfills without the lock and then looks, under the barrier, whether
 * anything was committed since; the last attempt backfills the rest under the barrier.
 */
const EARLY_CHECKPOINT_ATTEMPTS = 4;

/** Checkpoint rounds postponed in a row before the barrier backfills the last frames itself. */
const CHECKPOINT_MISSES_BEFORE_LOCKED_BACKFILL = 2;

/** What the barrier step did: ran (with the image, if asked), found commits since the backfill, or did not run. */
export type BarrierOutcome = { image: DatabaseImage | null } | "not-backfilled" | null;

/** What the barrier steps use of their replica. */
export interface ReplicaCore {
  readonly path: string;
  readonly name: string;
  readonly walPath: string;
  /** How long a barrier waits for the lock: `barrierTimeoutMs`, or `lockWaitMs` when it must succeed. */
  readonly options: { barrierTimeoutMs: number; lockWaitMs?: number; signal?: AbortSignal };
  readonly stats: { checkpoints: number; barrierMs: DurationSample };
  /** The database held open (the steps run only while it is). */
  local(): LocalDatabase;
  readonly chain: ChainWriter;
  /** Why continuity was lost, if it was (the next sync starts a new generation). */
  gap(): string | null;
  /** Records a loss of continuity (the first reason wins). */
  noteGap(reason: string): void;
  /** Uploads what is frozen, then captures and uploads what was committed since (no lock). */
  shipPending(): Promise<void>;
  /** Uploads what is frozen, in order. */
  drain(): Promise<void>;
}

/** The write-lock steps of one replica, and the checkpoint state they keep. */
export class BarrierSteps {
  /** Checkpoint rounds in a row postponed because commits kept arriving (see checkpoint()). */
  #checkpointMisses = 0;
  /** The position of the last checkpoint (so an idle, checkpointed WAL is not checkpointed again). */
  checkpointedAt: WalPosition | null = null;

  constructor(private readonly replica: ReplicaCore) {}

  /**
   * Runs `work` under the write-lock barrier (see underWriteLock). Returns null without running it if
   * the lock stayed busy, unless `mustSucceed`: then a busy lock is a (retryable) error.
   */
  async withBarrier<T>(work: () => T, opts: { mustSucceed?: boolean } = {}): Promise<T | null> {
    const { options, stats, path } = this.replica;
    const waitMs = opts.mustSucceed ? (options.lockWaitMs ?? 10_000) : options.barrierTimeoutMs;
    const result = await underWriteLock(path, work, {
      waitMs,
      signal: options.signal,
      onReleased: (ms) => stats.barrierMs.add(ms),
    });
    if (result === null && opts.mustSucceed) {
      throw new WalsyncError(
        `${path} stayed write-locked by another connection for ${waitMs / 1000} s`,
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
  async round(
    opts: {
      /** Run a PASSIVE checkpoint on this connection (opened before: nothing can fail to open once R ended). */
      checkpointer?: DatabaseSync;
      image?: boolean;
      mustSucceed?: boolean;
      /** Give up ("not-backfilled") unless the WAL is fully backfilled already: the checkpoint then writes nothing. */
      onlyIfBackfilled?: boolean;
    },
  ): Promise<BarrierOutcome> {
    const replica = this.replica;
    for (let attempt = 1;; attempt++) {
      const outcome = await this.withBarrier(() => {
        const local = replica.local();
        // Nothing touched yet: R stays where it is, the frames stay pinned.
        if (opts.onlyIfBackfilled && !local.walIndex.fullyBackfilled()) return "not-backfilled" as const;
        const spool = captureCommitted(replica.walPath, replica.chain.tip!, {
          pinBroken: local.pin.broken,
          memoryLimit: spoolBudget.available(),
        });
        if (spool.kind === "gap") {
          replica.noteGap(spool.reason);
          return "gap" as const;
        }
        if (spool.kind === "too-big") return "too-big" as const;
        this.releaseAndRepin(opts.checkpointer ?? null);
        if (spool.kind === "frames") replica.chain.freezeSegment(spool, bytesSource(spool.bytes!));
        return { image: opts.image ? scanImage(local.dbFile) : null };
      }, { mustSucceed: opts.mustSucceed });
      if (outcome === null || outcome === "gap") return null;
      if (outcome !== "too-big") return outcome;
      if (opts.onlyIfBackfilled) return "not-backfilled"; // frames were committed since
      if (attempt >= SPOOL_ATTEMPTS && !opts.mustSucceed) {
        log.debug(`${replica.name}: too much committed during the barrier for the spool; trying again later`);
        return null;
      }
      await replica.shipPending();
      if (replica.gap()) return null;
    }
  }

  /** Ends R, runs a PASSIVE checkpoint on `checkpointer` if given, re-pins R (see ReadPin); a failure to re-pin is a gap. */
  releaseAndRepin(checkpointer: DatabaseSync | null): void {
    const { name } = this.replica;
    const local = this.replica.local();
    try {
      local.pin.releaseAndRepin(() => checkpointer && checkpointPassive(checkpointer, name), {
        checkpoint: checkpointer !== null,
      });
    } catch (e) {
      const broken = local.pin.broken;
      if (broken) this.replica.noteGap(`lost the read transaction: ${broken}`);
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
  async checkpoint(): Promise<boolean> {
    const replica = this.replica;
    await replica.shipPending();
    if (replica.gap() || replica.chain.pending > 0) return false;
    const mayBackfillUnderLock = this.#checkpointMisses >= CHECKPOINT_MISSES_BEFORE_LOCKED_BACKFILL;
    let done: BarrierOutcome = null;
    const checkpointer = openCheckpointer(replica.path);
    try {
      for (let attempt = 1; attempt <= EARLY_CHECKPOINT_ATTEMPTS; attempt++) {
        // What the last attempt's R let through (a commit too big for the spool, say) is shipped
        // before R moves again: a new R on a fully backfilled WAL does not stop a restart.
        if (attempt > 1) await replica.shipPending();
        if (replica.gap() || replica.chain.pending > 0) return false;
        testPause("before-advance", replica.path);
        const advanced = replica.local().pin.advance(replica.chain.tip?.position ?? null);
        testPause("after-advance", replica.path);
        const last = attempt === EARLY_CHECKPOINT_ATTEMPTS || !advanced;
        // Without an advance the backfill below is limited by the old R; the barrier finishes it.
        if (advanced) checkpointPassive(checkpointer, replica.name);
        done = await this.round({
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
      log.debug(`${replica.name}: checkpoint postponed: commits kept arriving during the backfill`);
      return false;
    }
    if (!done) {
      if (!replica.gap()) log.debug(`${replica.name}: checkpoint skipped this round, the database is busy`);
      return false;
    }
    this.#checkpointMisses = 0;
    replica.stats.checkpoints++;
    this.checkpointedAt = replica.chain.tip?.position ?? null;
    if (replica.chain.pending > 0 && testHook("crash-after-checkpoint")) {
      log.warn(
        `${replica.name}: test hook crash-after-checkpoint: killing the process before the spool is uploaded`,
      );
      Deno.kill(Deno.pid, "SIGKILL");
    }
    await replica.drain();
    return true;
  }
}
