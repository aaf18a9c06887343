/**
 * `walsync watch`: one process replicating many databases until SIGINT/SIGTERM.
 * @module
 */
import { ExitCode, WalsyncError } from "../errors.ts";
import * as log from "../log.ts";
import type { Operations } from "../metrics/hooks.ts";
import type { Store } from "../storage/store.ts";
import { DEFAULT_LEASE_MS } from "../watch/lease.ts";
import { Replica, type ReplicaOptions } from "../watch/replica.ts";
import type { WatchTarget } from "../watch/targets.ts";
import { BackgroundRetention, type RetentionOptions } from "../lifecycle/background.ts";

/** Options of `watch`. */
export interface WatchOptions extends ReplicaOptions, RetentionOptions {
  syncIntervalMs: number;
  /** How many databases sync at the same time. */
  concurrency: number;
  /** Config globs and metrics (src/metrics/hooks.ts). */
  operations?: Operations;
}

/** Default tunables (see the README). */
export const WATCH_DEFAULTS: Omit<WatchOptions, "syncIntervalMs" | "snapshotIntervalMs"> = {
  leaseMs: DEFAULT_LEASE_MS,
  checkpointFrames: 1000,
  barrierTimeoutMs: 200,
  concurrency: 8,
};

/** Runs `fn` over `items` with at most `limit` at a time. */
async function forEachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]);
  });
  await Promise.all(workers);
}

/** Watches `targets` until a signal arrives; returns the exit code. */
export async function watchCommand(
  store: Store,
  targets: WatchTarget[],
  options: WatchOptions,
): Promise<number> {
  let stopping = false;
  let wake: () => void = () => {};
  const onSignal = (signal: Deno.Signal) => () => {
    if (stopping) {
      log.warn(`${signal} again: exiting immediately`);
      Deno.exit(ExitCode.Interrupted);
    }
    log.info(`${signal} received: shipping what is committed, then exiting`);
    stopping = true;
    wake();
  };
  const handlers = (["SIGINT", "SIGTERM"] as const).map((s) => [s, onSignal(s)] as const);
  for (const [signal, handler] of handlers) Deno.addSignalListener(signal, handler);

  try {
    const replicas: Replica[] = [];
    const failures: number[] = [];
    for (const target of targets) {
      if (stopping) break;
      const replica = new Replica(target.path, target.name, store, { ...options, ...target.overrides });
      try {
        await replica.start();
        replicas.push(replica);
      } catch (e) {
        if (!(e instanceof WalsyncError)) throw e;
        failures.push(e.exitCode);
        // Only a store that cannot be used affects every database (access denied, missing bucket);
        // anything about this database itself (missing, not a regular file, not SQLite, not in WAL
        // mode: usage errors among them) is reported and the others go on.
        if (e.exitCode === ExitCode.Storage && !e.retryable) throw e;
        log.error(`${target.name}: ${e.message}`);
      }
    }
    const ops = options.operations;
    if (replicas.length === 0 && !ops?.dynamic) {
      // One kind of failure for all (every database locked by another watch, or every input not a
      // SQLite database) keeps its documented code (7, 2); a mix is a runtime failure.
      const codes = new Set(failures);
      const only = codes.size === 1 ? [...codes][0] : undefined;
      const code = only === ExitCode.Locked || only === ExitCode.Usage ? only : ExitCode.Failure;
      throw new WalsyncError("no database could be watched", code);
    }
    log.info(`watching ${replicas.length} database(s); sync every ${options.syncIntervalMs} ms`);

    ops?.started(replicas, options);
    const retention = new BackgroundRetention(store, () => replicas.map((r) => r.name), options);
    retention.start();
    while (!stopping) {
      await ops?.beforeRound(replicas);
      const started = Date.now();
      await forEachLimited(replicas, options.concurrency, async (replica) => {
        try {
          await replica.sync(started);
          ops?.synced(replica);
        } catch (e) {
          ops?.synced(replica, e);
          log.debug(`${replica.name}: sync failed: ${(e as Error).message}`);
        }
      });
      const wait = Math.max(0, options.syncIntervalMs - (Date.now() - started));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }

    await retention.stop();
    await ops?.stop();
    let failed = 0;
    await forEachLimited(replicas, options.concurrency, async (replica) => {
      try {
        await replica.stop();
      } catch (e) {
        failed++;
        log.error(`${replica.name}: could not ship the last commits before exiting: ${(e as Error).message}`);
      }
    });
    const generations = replicas.reduce((n, r) => n + r.stats.generationsStarted, 0);
    const segments = replicas.reduce((n, r) => n + r.stats.segments, 0);
    log.info(`stopped: ${segments} segment(s) shipped, ${generations} generation(s) started`);
    return failed ? ExitCode.Failure : ExitCode.Ok;
  } finally {
    for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
  }
}
