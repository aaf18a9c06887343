/**
 * The writing end of a generation's chain (docs/design.md §3.3, "Frozen uploads"): assigns each new segment or snapshot
 * its place (generation, index, time, key, metadata), freezes it, and uploads the frozen objects
 * strictly in order. A failed upload is retried later with exactly the same key, metadata and bytes;
 * nothing newer is uploaded before it is confirmed, so a lost answer never produces a second object
 * for the same index.
 * @module
 */
import { nextTime, segmentKey, snapshotKey } from "../layout.ts";
import * as log from "../log.ts";
import { encodeSegmentMeta, encodeSnapshotMeta } from "../metadata.ts";
import type { DatabaseImage } from "../sqlite/image.ts";
import type { ByteSource } from "../storage/source.ts";
import type { Store } from "../storage/store.ts";
import { uploadVerified } from "../storage/upload.ts";
import type { CapturedFrames, Tip } from "./capture.ts";
import { CaptureChangedError, frozenSource, type PendingUpload, spoolBudget } from "./outbox.ts";

/** Counters the chain writer keeps up to date (a replica's stats). */
export interface UploadCounters {
  segments: number;
  snapshots: number;
  failedUploads: number;
}

/** Frozen uploads of one database, and the chain position they lead to. */
export class ChainWriter {
  generation = 0;
  /** Index the next segment gets. */
  nextIndex = 0;
  /** Time of the newest object (stored or frozen): keys' times strictly increase. */
  lastTime: number | undefined;
  /** The end of the last captured object (stored or frozen): the next segment starts here. */
  tip: Tip | null = null;
  #queue: PendingUpload[] = [];
  #outage: string | null = null;

  /** `onStored` runs once per object, when its upload is confirmed. */
  constructor(
    readonly store: Store,
    readonly name: string,
    readonly counters: UploadCounters,
    readonly onStored: (upload: PendingUpload) => void,
  ) {}

  /** How many frozen objects wait for a confirmed upload. */
  get pending(): number {
    return this.#queue.length;
  }

  /** The index after the last confirmed segment (for state.json). */
  get confirmedNextIndex(): number {
    return this.nextIndex - this.#queue.filter((u) => u.kind === "segment").length;
  }

  /** Continues a stored chain at `tip`. */
  resume(generation: number, nextIndex: number, tip: Tip): void {
    this.clear();
    this.generation = generation;
    this.nextIndex = nextIndex;
    this.tip = tip;
  }

  /** Starts generation `generation` (its first object will be a snapshot); drops anything pending. */
  startGeneration(generation: number): void {
    this.clear();
    this.generation = generation;
    this.nextIndex = 0;
  }

  /**
   * Freezes `frames` as the next segment: its index, time, key and metadata never change after
   * this, and every upload of `content` is checked against the frames' SHA-256.
   */
  freezeSegment(frames: CapturedFrames, content: ByteSource): void {
    const { header, from, end } = frames;
    const time = nextTime(this.lastTime);
    const key = segmentKey(this.name, this.generation, time);
    const metadata = encodeSegmentMeta({
      index: this.nextIndex,
      pageSize: header.pageSize,
      magic: header.magic,
      checkpointSeq: header.checkpointSeq,
      salt1: header.salt1,
      salt2: header.salt2,
      firstFrame: from.frame + 1,
      frameCount: end.frame - from.frame,
      before: from.checksum,
      after: end.checksum,
      commitSize: frames.commitSize,
    });
    const memoryBytes = frames.bytes?.byteLength ?? 0;
    spoolBudget.used += memoryBytes;
    this.lastTime = time;
    this.nextIndex++;
    this.tip = { header, position: end, pageSize: header.pageSize };
    this.#queue.push({
      kind: "segment",
      key,
      time,
      metadata,
      source: frozenSource(
        content,
        frames.sha256,
        `segment ${key} (WAL frames ${from.frame + 1}-${end.frame})`,
      ),
      tip: this.tip,
      description: `frames ${from.frame + 1}-${end.frame} (${frames.length} bytes${
        memoryBytes ? ", spooled" : ""
      })`,
      memoryBytes,
    });
  }

  /**
   * Freezes a snapshot of `image` (at the tip). A retry streams the image again: the caller keeps
   * the read transaction that pins it where it is until the snapshot is confirmed.
   */
  freezeSnapshot(image: DatabaseImage, reason: string): void {
    const time = nextTime(this.lastTime);
    const key = snapshotKey(this.name, this.generation, time);
    const metadata = encodeSnapshotMeta({
      pageSize: image.pageSize,
      pageCount: image.pageCount,
      position: image.position,
      segmentsBefore: this.nextIndex,
    });
    this.lastTime = time;
    this.tip = { header: image.walHeader, position: image.position, pageSize: image.pageSize };
    this.#queue.push({
      kind: "snapshot",
      key,
      time,
      metadata,
      source: image,
      tip: this.tip,
      description: `${image.size} bytes; ${reason}`,
      memoryBytes: 0,
    });
  }

  /**
   * Uploads the frozen objects in order; each leaves the queue only once confirmed. Throws on an
   * upload failure (the rest stays queued for the next attempt). Returns why continuity is lost if
   * a frozen segment's frames were overwritten before they could be uploaded (the queue is then
   * dropped), else null.
   */
  async drain(): Promise<string | null> {
    while (this.#queue.length > 0) {
      const item = this.#queue[0];
      try {
        await this.#upload(item);
      } catch (e) {
        if (!(e instanceof CaptureChangedError)) throw e;
        this.clear();
        return e.message;
      }
      this.#queue.shift();
      spoolBudget.used -= item.memoryBytes;
      if (item.kind === "segment") this.counters.segments++;
      else this.counters.snapshots++;
      this.onStored(item);
    }
    return null;
  }

  /** Drops everything pending (it belongs to a generation that is being abandoned). */
  clear(): void {
    for (const item of this.#queue) spoolBudget.used -= item.memoryBytes;
    this.#queue = [];
  }

  /** Uploads with verification; logs an outage once and its end once. Throws on failure. */
  async #upload(item: PendingUpload): Promise<void> {
    try {
      await uploadVerified(this.store, item.key, item.source, item.metadata);
      if (this.#outage) {
        log.info(`${this.name}: store reachable again; shipping resumed`);
        this.#outage = null;
      }
    } catch (e) {
      this.counters.failedUploads++;
      const message = (e as Error).message;
      if (!this.#outage) {
        log.warn(`${this.name}: upload failed, will retry (the WAL stays pinned meanwhile): ${message}`);
      }
      this.#outage = message;
      throw e;
    }
  }
}
