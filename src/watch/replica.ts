/**
 * Continuous replication of one database (DESIGN.md §4): a read transaction held at all times pins
 * the WAL; each sync ships the committed frames after the last shipped position as one segment;
 * walsync runs the checkpoints itself under a short write-lock barrier, so that every WAL restart it
 * later sees is provably continuous; anything else is a gap and starts a new generation.
 * @module
 */
import { fstatSync } from "node:fs";
import type { DatabaseSync } from "node:sqlite";
import { type DatabaseCatalog, latestTime, readCatalog } from "../catalog.ts";
import { ExitCode, WalsyncError } from "../errors.ts";
import { type BackupObject, nextTime, segmentKey, snapshotKey, stateKey } from "../layout.ts";
import * as log from "../log.ts";
import { decodeSegmentMeta, decodeSnapshotMeta, encodeSegmentMeta, encodeSnapshotMeta } from "../metadata.ts";
import {
  acquireWriteLock,
  beginRead,
  DbFile,
  endTransaction,
  openReader,
  openWriter,
} from "../sqlite/database.ts";
import { type DatabaseImage, scanImage } from "../sqlite/image.ts";
import { fileRangeSource } from "../storage/file_range.ts";
import type { Store } from "../storage/store.ts";
import { bytesSource, uploadVerified } from "../storage/upload.ts";
import {
  closeFd,
  frameOffset,
  openForRead,
  parseFrameHeader,
  readAt,
  readWalHeader,
  scanWal,
  startOf,
  WAL_FRAME_HEADER_SIZE,
  type WalHeader,
  type WalPosition,
} from "../wal.ts";

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
}

/** Where the replica stands: the cycle it is in and the last position stored in the backup. */
interface Shipped {
  /** Header of the WAL cycle `position` belongs to (null: the snapshot was taken with no WAL). */
  header: WalHeader | null;
  position: WalPosition | null;
  pageSize: number;
}

/** One watched database. */
export class Replica {
  readonly stats: ReplicaStats = {
    segments: 0,
    snapshots: 0,
    generationsStarted: 0,
    checkpoints: 0,
    failedUploads: 0,
  };
  generation = 0;
  #nextIndex = 0;
  #shipped: Shipped | null = null;
  #reader: DatabaseSync | null = null;
  /** Our own descriptor of the database file: opened before the connections, closed after them. */
  #dbFile: DbFile | null = null;
  #lastTime: number | undefined;
  #lastSnapshotAt = 0;
  #segmentsSinceSnapshot = 0;
  /** The WAL probe of the last round whose scan found nothing committed (see #walHasNews). */
  #nothingNewAt: string | null = null;
  #probeKey: string | null = null;
  /** The position of the last checkpoint (so an idle, checkpointed WAL is not checkpointed again). */
  #checkpointedAt: WalPosition | null = null;
  #outage: string | null = null;
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
  ) {}

  get #walPath(): string {
    return `${this.path}-wal`;
  }

  /** Opens the database (checks that it is a SQLite file in WAL mode) unless it is open already. */
  async open(): Promise<void> {
    if (!this.#reader) await this.#open();
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
    const [catalog] = await readCatalog(this.store, this.name);
    this.#lastTime = latestTime(catalog);
    const resumable = await this.#storedTip(catalog);
    const resumed = await this.#withBarrier(async () => {
      endTransaction(this.#reader!);
      beginRead(this.#reader!);
      if (!resumable) return "no stored generation to continue";
      const why = this.#continues(resumable.shipped);
      if (why) return why;
      this.generation = resumable.generation;
      this.#nextIndex = resumable.nextIndex;
      this.#shipped = resumable.shipped;
      this.#lastSnapshotAt = resumable.lastSnapshotAt;
      await this.#shipPending();
      return null;
    }, { mustSucceed: true });
    if (resumed === null) {
      log.info(`${this.name}: continuing generation ${this.generation} at segment #${this.#nextIndex}`);
    } else {
      await this.#newGeneration(resumed, (catalog?.generations.at(-1)?.generation ?? 0) + 1);
    }
  }

  /** The last stored position of the newest generation, read from its last object's metadata. */
  async #storedTip(catalog: DatabaseCatalog | undefined) {
    const generation = catalog?.generations.at(-1);
    if (!generation || generation.snapshots.length === 0) return null;
    const last: BackupObject = [...generation.snapshots, ...generation.segments].sort((a, b) =>
      a.time - b.time
    ).at(-1)!;
    const head = await this.store.head(last.key);
    if (!head) return null;
    try {
      const lastSnapshotAt = generation.snapshots.at(-1)!.time;
      if (last.kind === "snapshot") {
        const meta = decodeSnapshotMeta(head.metadata);
        return {
          generation: generation.generation,
          nextIndex: meta.segmentsBefore,
          lastSnapshotAt,
          shipped: { header: null, position: meta.position, pageSize: meta.pageSize },
        };
      }
      const meta = decodeSegmentMeta(head.metadata);
      return {
        generation: generation.generation,
        nextIndex: meta.index + 1,
        lastSnapshotAt,
        shipped: {
          header: null,
          position: {
            salt1: meta.salt1,
            salt2: meta.salt2,
            frame: meta.firstFrame + meta.frameCount - 1,
            checksum: meta.after,
          },
          pageSize: meta.pageSize,
        },
      };
    } catch (e) {
      log.warn(`${this.name}: cannot read ${last.key} to resume: ${(e as Error).message}`);
      return null;
    }
  }

  /**
   * Checks that the WAL on disk still holds the stored position `shipped` (same cycle, and the
   * checksum chain reaches exactly the stored checksum at that frame). Returns why not, or null.
   * On success fills in the cycle header.
   */
  #continues(shipped: Shipped): string | null {
    const position = shipped.position;
    if (!position) return "the last snapshot was taken without a WAL";
    const wal = openForRead(this.#walPath);
    if (wal === null) return "the WAL file is gone";
    try {
      const header = readWalHeader(wal);
      if (!header) return "the WAL has no valid header";
      if (header.salt1 !== position.salt1 || header.salt2 !== position.salt2) {
        return "the WAL was restarted or replaced while walsync was not watching";
      }
      if (header.pageSize !== shipped.pageSize) return "the page size changed";
      let reached: WalPosition | null = position.frame === 0 ? startOf(header) : null;
      scanWal(wal, header, startOf(header), (frame) => {
        if (frame.frameNo === position.frame) {
          reached = { salt1: header.salt1, salt2: header.salt2, frame: frame.frameNo, checksum: frame.after };
        }
      }, position.frame);
      const at = reached as WalPosition | null;
      if (!at || at.checksum[0] !== position.checksum[0] || at.checksum[1] !== position.checksum[1]) {
        return "the WAL no longer holds the last shipped frame";
      }
      shipped.header = header;
      return null;
    } finally {
      closeFd(wal);
    }
  }

  /**
   * One sync round: ship new commits, then checkpoint or snapshot when due. Throws on failure; the
   * caller retries with backoff (src/watch/scheduler.ts). Nothing is lost meanwhile: the position
   * does not move and the read transaction pins the WAL. `rescan`: the WAL was written since the
   * last round (a file-system event), so read it even if its size, mtime and next frame header look
   * as before (a commit in place in the same mtime tick).
   */
  async sync(now = Date.now(), rescan = false): Promise<void> {
    if (this.failure) return;
    if (rescan) this.#nothingNewAt = null;
    await this.#syncRound(now);
  }

  async #syncRound(now: number): Promise<void> {
    const stat = await statOrNull(this.path);
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
    if (stat.ino !== this.#dbFile?.ino) this.#gap ??= "the database file was replaced";
    if (this.#gap) {
      const reason = this.#gap;
      await this.#reopen();
      // Numbered after everything stored (a one-shot `snapshot` may have added a generation).
      const [catalog] = await readCatalog(this.store, this.name);
      const newest = Math.max(this.generation, catalog?.generations.at(-1)?.generation ?? 0);
      await this.#newGeneration(reason, newest + 1);
      return;
    }
    // A checkpoint ships the pending frames itself, under the barrier: still one PUT this round.
    const position = this.#shipped?.position;
    const checkpointDue = position !== null && position !== undefined &&
      position.frame >= this.options.checkpointFrames && !samePosition(position, this.#checkpointedAt);
    const checkpointed = checkpointDue && await this.#checkpoint();
    if (!checkpointed && this.#walHasNews()) {
      const before = this.stats.segments;
      await this.#shipPending();
      this.#nothingNewAt = this.stats.segments === before ? this.#probeKey : null;
    }
    if (this.#gap) return;
    if (now - this.#lastSnapshotAt >= this.options.snapshotIntervalMs && this.#segmentsSinceSnapshot > 0) {
      await this.#snapshot("scheduled snapshot");
    }
  }

  /**
   * Whether the WAL may hold something past the shipped position: its header is not the one of our
   * position's cycle (a restart, or a gap to report), or the frame after our position carries the
   * cycle's salts. Two small reads per database and round; idle databases stop here.
   *
   * The WAL file's size and mtime are not enough: mtime has millisecond resolution, and after a
   * restart SQLite rewrites the file in place without changing its size, so a commit could go
   * unnoticed until the next one (measured: about 3 in 100 tries).
   */
  #walHasNews(): boolean {
    const wal = openForRead(this.#walPath);
    if (wal === null) return false;
    try {
      const header = readWalHeader(wal);
      if (!header) return false;
      const position = this.#shipped?.position;
      if (!position || header.salt1 !== position.salt1 || header.salt2 !== position.salt2) return true;
      const next = new Uint8Array(WAL_FRAME_HEADER_SIZE);
      if (readAt(wal, frameOffset(position.frame + 1, header.pageSize), next) < next.byteLength) return false;
      const frame = parseFrameHeader(next);
      if (frame.salt1 !== header.salt1 || frame.salt2 !== header.salt2) return false;
      // Frames of an unfinished or rolled-back transaction stay there: do not rescan them every
      // round unless the file changed at all (size, mtime) or that frame was rewritten.
      const stat = fstatSync(wal);
      const key = `${stat.size}:${stat.mtimeMs}:${Array.from(next).join(",")}`;
      if (key === this.#nothingNewAt) return false;
      this.#probeKey = key;
      return true;
    } finally {
      closeFd(wal);
    }
  }

  /** Ships whatever is committed and stops: the in-flight work is finished, the read lock released. */
  async stop(): Promise<void> {
    try {
      if (!this.failure && !this.#gap && this.#reader) await this.#shipPending();
      if (!this.failure && !this.unavailable) await this.#writeState();
    } finally {
      this.#close();
    }
  }

  #close(): void {
    if (this.#reader) {
      try {
        endTransaction(this.#reader);
        this.#reader.close();
      } catch { /* closing anyway */ }
      this.#reader = null;
    }
    this.#dbFile?.close(); // only after the connection (see DbFile)
    this.#dbFile = null;
  }

  /** Opens our descriptor and the read-only connection; checks that the database is in WAL mode. */
  async #open(): Promise<void> {
    const { dbFile, header } = await DbFile.open(this.path);
    if (header.writeVersion !== 2) {
      dbFile.close();
      throw new WalsyncError(
        `${this.path} is not in WAL mode (walsync watch needs it); switch it once with: ` +
          `sqlite3 ${this.path} "PRAGMA journal_mode=WAL"`,
      );
    }
    this.#dbFile = dbFile;
    try {
      this.#reader = openReader(this.path);
    } catch (e) {
      this.#close();
      throw e;
    }
  }

  async #reopen(): Promise<void> {
    this.#close();
    await this.#open();
  }

  #fail(reason: string): void {
    if (this.failure) return;
    this.failure = reason;
    log.error(`${this.name}: stopped replicating: ${reason}`);
    this.#close();
  }

  /**
   * Reads the WAL past the shipped position and uploads the committed frames as one segment.
   * Detects gaps (a header change that is not a clean restart) and records them in #gap.
   */
  async #shipPending(): Promise<void> {
    const shipped = this.#shipped;
    if (!shipped) return;
    const wal = openForRead(this.#walPath);
    if (wal === null) return; // no WAL yet, or not yet re-created: nothing new
    let segment: { header: WalHeader; from: WalPosition; end: WalPosition; commitSize: number } | null = null;
    try {
      const header = readWalHeader(wal);
      if (!header) return; // empty or being rewritten: nothing committed to read yet
      let from: WalPosition;
      const position = shipped.position;
      if (position && header.salt1 === position.salt1 && header.salt2 === position.salt2) {
        from = position;
      } else if (!position || header.salt1 === ((position.salt1 + 1) >>> 0)) {
        from = startOf(header); // a clean restart (or the first WAL after a WAL-less snapshot)
      } else {
        this.#gap = `the WAL header changed without a clean restart (salt-1 ${hex(position.salt1)} -> ${
          hex(header.salt1)
        })`;
        return;
      }
      if (header.pageSize !== shipped.pageSize) {
        this.#gap = `the page size changed from ${shipped.pageSize} to ${header.pageSize}`;
        return;
      }
      const scan = scanWal(wal, header, from);
      if (scan.end.frame > from.frame) {
        segment = { header, from, end: scan.end, commitSize: scan.commitSize! };
      }
    } finally {
      closeFd(wal);
    }
    if (segment) await this.#uploadSegment(segment);
  }

  async #uploadSegment(s: { header: WalHeader; from: WalPosition; end: WalPosition; commitSize: number }) {
    const { header, from, end } = s;
    const frameSize = WAL_FRAME_HEADER_SIZE + header.pageSize;
    const offset = frameOffset(from.frame + 1, header.pageSize);
    const length = (end.frame - from.frame) * frameSize;
    const time = nextTime(this.#lastTime);
    const key = segmentKey(this.name, this.generation, time);
    const metadata = encodeSegmentMeta({
      index: this.#nextIndex,
      pageSize: header.pageSize,
      magic: header.magic,
      checkpointSeq: header.checkpointSeq,
      salt1: header.salt1,
      salt2: header.salt2,
      firstFrame: from.frame + 1,
      frameCount: end.frame - from.frame,
      before: from.checksum,
      after: end.checksum,
      commitSize: s.commitSize,
    });
    await this.#upload(key, fileRangeSource(this.#walPath, offset, length), metadata);
    this.#lastTime = time;
    this.#nextIndex++;
    this.#shipped = { header, position: end, pageSize: header.pageSize };
    this.stats.segments++;
    this.#segmentsSinceSnapshot++;
    log.debug(`${this.name}: segment ${key} frames ${from.frame + 1}-${end.frame} (${length} bytes)`);
  }

  /** Uploads with verification; logs an outage once and its end once. Throws on failure. */
  async #upload(key: string, source: Parameters<typeof uploadVerified>[2], metadata: Record<string, string>) {
    try {
      const result = await uploadVerified(this.store, key, source, metadata);
      if (this.#outage) {
        log.info(`${this.name}: store reachable again; shipping resumed`);
        this.#outage = null;
      }
      return result;
    } catch (e) {
      this.stats.failedUploads++;
      const message = (e as Error).message;
      if (!this.#outage) {
        log.warn(`${this.name}: upload failed, will retry (the WAL stays pinned meanwhile): ${message}`);
      }
      this.#outage = message;
      throw e;
    }
  }

  /**
   * Runs `work` while holding the write lock (BEGIN IMMEDIATE on a second connection), after
   * shipping everything committed. Returns null without running it if the lock stayed busy.
   */
  async #withBarrier<T>(work: () => Promise<T>, opts: { mustSucceed?: boolean } = {}): Promise<T | null> {
    const writer = openWriter(this.path);
    try {
      // Cooperative: short tries with pauses on a timer, so other databases and signals go on.
      const waitMs = opts.mustSucceed ? (this.options.lockWaitMs ?? 10_000) : this.options.barrierTimeoutMs;
      if (!(await acquireWriteLock(writer, waitMs, { signal: this.options.signal }))) {
        if (!opts.mustSucceed) return null;
        throw new WalsyncError(
          `${this.path} stayed write-locked by another connection for ${waitMs / 1000} s`,
          ExitCode.Failure,
          { retryable: true },
        );
      }
      try {
        return await work();
      } finally {
        endTransaction(writer);
      }
    } finally {
      writer.close();
    }
  }

  /** Checkpoint under the barrier: everything shipped, R ended, PASSIVE checkpoint, R re-opened. */
  /** Returns true if the checkpoint ran (everything committed was shipped first). */
  async #checkpoint(): Promise<boolean> {
    const done = await this.#withBarrier(async () => {
      await this.#shipPending();
      if (this.#gap) return false;
      endTransaction(this.#reader!);
      const checkpointer = openWriter(this.path);
      try {
        const result = checkpointer.prepare("PRAGMA wal_checkpoint(PASSIVE)").get() as Record<string, number>;
        log.debug(`${this.name}: checkpoint: ${result.checkpointed} of ${result.log} frames backfilled`);
      } finally {
        checkpointer.close();
        this.#holdReadLock();
      }
      this.#checkpointedAt = this.#shipped?.position ?? null;
      return true;
    });
    if (done) this.stats.checkpoints++;
    else if (done === null) log.debug(`${this.name}: checkpoint skipped this round, the database is busy`);
    return done === true;
  }

  /** A snapshot in the current generation, at the WAL end, under the barrier. */
  async #snapshot(reason: string): Promise<void> {
    const image = await this.#withBarrier(async () => {
      await this.#shipPending();
      if (this.#gap) return null;
      endTransaction(this.#reader!);
      this.#holdReadLock();
      return await scanImage(this.#dbFile!);
    });
    if (!image) return;
    await this.#uploadSnapshot(image, reason);
  }

  /** Re-opens the read transaction; if that fails, continuity can no longer be proven. */
  #holdReadLock(): void {
    try {
      beginRead(this.#reader!);
    } catch (e) {
      this.#gap = `lost the read transaction: ${(e as Error).message}`;
      throw e;
    }
  }

  async #newGeneration(reason: string, generation: number): Promise<void> {
    // The first generation of a new backup is routine; any later one means continuity was lost.
    (generation === 1 ? log.info : log.warn)(`${this.name}: starting generation ${generation}: ${reason}`);
    const image = await this.#withBarrier(async () => {
      endTransaction(this.#reader!);
      this.#holdReadLock();
      return await scanImage(this.#dbFile!);
    }, { mustSucceed: true });
    this.generation = generation;
    this.#nextIndex = 0;
    this.#gap = null;
    this.stats.generationsStarted++;
    await this.#uploadSnapshot(image!, `generation ${generation}`);
    await this.#writeState();
  }

  async #uploadSnapshot(image: DatabaseImage, reason: string): Promise<void> {
    const time = nextTime(this.#lastTime);
    const key = snapshotKey(this.name, this.generation, time);
    await this.#upload(
      key,
      image,
      encodeSnapshotMeta({
        pageSize: image.pageSize,
        pageCount: image.pageCount,
        position: image.position,
        segmentsBefore: this.#nextIndex,
      }),
    );
    this.#lastTime = time;
    this.#lastSnapshotAt = time;
    this.#segmentsSinceSnapshot = 0;
    this.#shipped = { header: image.walHeader, position: image.position, pageSize: image.pageSize };
    this.stats.snapshots++;
    log.info(`${this.name}: snapshot ${key} (${image.size} bytes; ${reason})`);
  }

  /** state.json: a hint for `list` and people; restore never depends on it. */
  async #writeState(): Promise<void> {
    const state = {
      name: this.name,
      path: this.path,
      generation: this.generation,
      nextSegmentIndex: this.#nextIndex,
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

function hex(n: number): string {
  return n.toString(16).padStart(8, "0");
}

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}
