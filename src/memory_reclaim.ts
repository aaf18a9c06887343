/**
 * Gives memory back to the system while `watch` runs for months (docs/design.md §3.6).
 *
 * Uploads, snapshots and compaction leave garbage behind in bursts; an idle process allocates
 * nothing, so V8 never collects it and glibc's malloc keeps the freed pages as well. Measured
 * here: after a burst of 150 MB of buffers, a full collection took the RSS from 282 to 236 MB, and
 * `malloc_trim(0)` then to 52 MB. This module runs both after each background pass that did work
 * (retention, compaction: they read every database's listing) and whenever the RSS has grown since
 * the last reclaim: a collection of walsync's small live heap takes a few tens of milliseconds at
 * 100 databases, on a timer, never while the application's lock is held (the barrier is synchronous).
 *
 * Both levers are optional: without `--expose-gc` support or on a system without glibc (macOS,
 * Windows, musl) the missing one is skipped, and nothing else depends on them.
 * @module
 */
import * as log from "./log.ts";

/** Settings of a {@link MemoryReclaimer}. */
export interface ReclaimOptions {
  /** How often the RSS is looked at (ms; default 30 s). */
  checkMs?: number;
  /** Growth of the RSS since the last reclaim that triggers the next one (bytes; default 16 MiB). */
  growthBytes?: number;
}

/** What one reclaim did. */
export interface Reclaimed {
  rssBefore: number;
  rssAfter: number;
  ms: number;
}

type Collect = () => void;
type Trim = () => void;

let levers: { collect: Collect | null; trim: Trim | null } | undefined;

/** The full collection and malloc_trim this process can use (each null if unavailable), found once. */
async function findLevers(): Promise<{ collect: Collect | null; trim: Trim | null }> {
  if (levers) return levers;
  let collect: Collect | null = null;
  try {
    const v8 = await import("node:v8");
    const vm = await import("node:vm");
    v8.setFlagsFromString("--expose-gc");
    const gc = vm.runInNewContext("gc");
    if (typeof gc === "function") collect = () => gc();
  } catch (e) {
    log.debug(`memory: no full collection available: ${(e as Error).message}`);
  }
  let trim: Trim | null = null;
  // Only with --allow-ffi granted already: asking would prompt on a terminal (deno run without -A).
  if (Deno.build.os === "linux" && Deno.permissions.querySync({ name: "ffi" }).state === "granted") {
    try {
      const libc = Deno.dlopen("libc.so.6", { malloc_trim: { parameters: ["usize"], result: "i32" } });
      trim = () => void libc.symbols.malloc_trim(0n);
    } catch (e) {
      // musl: the collection alone still helps.
      log.debug(`memory: malloc_trim unavailable: ${(e as Error).message}`);
    }
  }
  levers = { collect, trim };
  return levers;
}

/** Runs a full collection, then returns free heap pages to the system. */
export async function reclaimMemory(): Promise<Reclaimed> {
  const { collect, trim } = await findLevers();
  const rssBefore = Deno.memoryUsage().rss;
  const started = performance.now();
  collect?.();
  trim?.();
  return { rssBefore, rssAfter: Deno.memoryUsage().rss, ms: performance.now() - started };
}

/** Reclaims memory on a timer whenever the RSS has grown by `growthBytes` since the last reclaim. */
export class MemoryReclaimer {
  #timer: ReturnType<typeof setTimeout> | undefined;
  #requested: ReturnType<typeof setTimeout> | undefined;
  #lastAt = -Infinity;
  #baseline = 0;
  #stopped = false;
  readonly #checkMs: number;
  readonly #growthBytes: number;
  /** How many reclaims ran, and the last one's figures. */
  count = 0;
  last: Reclaimed | null = null;

  constructor(options: ReclaimOptions = {}) {
    this.#checkMs = options.checkMs ?? 30_000;
    this.#growthBytes = options.growthBytes ?? 16 * 1024 * 1024;
  }

  /** Reclaims once now (after start-up's burst), then checks every interval. */
  start(): void {
    if (this.#stopped) return;
    this.#tick(true);
  }

  async #tick(force: boolean): Promise<void> {
    try {
      const rss = Deno.memoryUsage().rss;
      const justDone = performance.now() - this.#lastAt < 1000; // a request right after a check
      if (force ? !justDone : rss > this.#baseline + this.#growthBytes) {
        this.#lastAt = performance.now();
        this.last = await reclaimMemory();
        this.count++;
        this.#baseline = this.last.rssAfter;
        log.debug(
          `memory: reclaimed ${((this.last.rssBefore - this.last.rssAfter) / 1e6).toFixed(1)} MB in ` +
            `${this.last.ms.toFixed(1)} ms (RSS ${(this.last.rssAfter / 1e6).toFixed(1)} MB)`,
        );
      } else {
        this.#baseline = Math.min(this.#baseline, rss);
      }
    } catch (e) {
      log.debug(`memory: reclaim failed: ${(e as Error).message}`);
    }
    if (!this.#stopped) {
      this.#timer = setTimeout(() => this.#tick(false), this.#checkMs);
      Deno.unrefTimer(this.#timer);
    }
  }

  /**
   * Asks for a reclaim a moment from now (coalesced): after a burst of work that left garbage, such
   * as a retention or compaction pass over every database.
   */
  request(delayMs = 1000): void {
    if (this.#stopped || this.#requested !== undefined) return;
    this.#requested = setTimeout(() => {
      this.#requested = undefined;
      clearTimeout(this.#timer);
      this.#tick(true);
    }, delayMs);
    Deno.unrefTimer(this.#requested);
  }

  /** Stops checking. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#requested);
  }
}
