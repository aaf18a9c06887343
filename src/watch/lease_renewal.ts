/**
 * Keeping a database's lease (docs/design.md §8): renewed every third of its time on a timer of its
 * own, so a slow sync never delays it; failures retried every 1 to 10 s, and at once when the store
 * answers again after an outage. Uploads stop by themselves (FencedStore) if it cannot be renewed in
 * time; a lease someone else holds now ends the replica. Timers run on the monotonic clock.
 * @module
 */
import * as log from "../log.ts";
import type { Lease } from "./lease.ts";

/** What the renewal needs from the database loop that owns the lease. */
export interface RenewalContext {
  /** The database's name (for the log). */
  name: string;
  /** Aborted at shutdown. */
  signal: AbortSignal;
  /** Wakes the database loop: uploads may resume, or must stop. */
  wake(): void;
  /** Subscribes to "the store answers again after an outage"; returns the unsubscribe function. */
  onStoreReachable?(listener: () => void): () => void;
}

/** The renewal of one lease; {@link stop} ends it (the lease is released or dropped). */
export class LeaseRenewal {
  #stopped = false;
  #cancelWait: (() => void) | null = null;
  /** Resolves when the renewal loop has ended. */
  readonly done: Promise<void>;

  constructor(readonly lease: Lease, readonly ctx: RenewalContext) {
    this.done = this.#run();
  }

  /** Ends the renewal (its current wait too). */
  stop(): void {
    this.#stopped = true;
    this.#cancelWait?.();
  }

  get #over(): boolean {
    return this.#stopped || this.ctx.signal.aborted || this.lease.lost !== null;
  }

  async #run(): Promise<void> {
    const { lease, ctx } = this;
    let retryMs = 0;
    let failing = false;
    while (!this.#over) {
      const at = retryMs > 0 ? performance.now() + retryMs : lease.renewalDueAt;
      await this.#wait(Math.max(0, at - performance.now()), retryMs > 0);
      if (this.#over) return;
      const fenced = !lease.canWrite();
      try {
        await lease.renew();
        retryMs = 0;
        if (failing) log.info(`${ctx.name}: lease renewed${fenced ? "; uploads resume" : ""}`);
        failing = false;
        if (fenced) ctx.wake();
      } catch (e) {
        if (lease.lost) {
          log.error(`${ctx.name}: ${lease.lost}; stopped uploading it`);
          ctx.wake();
          return;
        }
        retryMs = Math.min(Math.max(retryMs * 2, 1000), 10_000);
        if (!failing) {
          const fenceAt = new Date(Date.now() + lease.fenceAt - performance.now()).toISOString();
          log.warn(
            `${ctx.name}: could not renew the lease, retrying (uploads stop at ${fenceAt} unless it is renewed): ${
              (e as Error).message
            }`,
          );
        }
        failing = true;
        if (!lease.canWrite()) ctx.wake();
      }
    }
  }

  /** Waits `ms`, or less at shutdown, at {@link stop}, or (when retrying) when the store is back. */
  #wait(ms: number, onRecovery: boolean): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        unsubscribe?.();
        this.ctx.signal.removeEventListener("abort", done);
        if (this.#cancelWait === done) this.#cancelWait = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      const unsubscribe = onRecovery ? this.ctx.onStoreReachable?.(done) : undefined;
      this.ctx.signal.addEventListener("abort", done, { once: true });
      this.#cancelWait = done;
    });
  }
}
