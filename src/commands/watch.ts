/**
 * `walsync watch`: one process replicating many databases until SIGINT/SIGTERM. Each database runs
 * on its own schedule (src/watch/scheduler.ts); this module handles signals, the start-up summary
 * and the exit code.
 * @module
 */
import { ExitCode, WalsyncError } from "../errors.ts";
import * as log from "../log.ts";
import type { Store } from "../storage/store.ts";
import { DEFAULT_LEASE_MS } from "../watch/lease.ts";
import { BackgroundRetention, type RetentionOptions } from "../lifecycle/background.ts";
import { BackgroundCompaction, type CompactionSettings } from "../compact/background.ts";
import type { Operations } from "../metrics/hooks.ts";
import { type SchedulerOptions, WatchScheduler } from "../watch/scheduler.ts";
import type { WatchTarget } from "../watch/targets.ts";
import { armClockStep } from "../watch/test_hooks.ts";
import { MemoryReclaimer } from "../memory_reclaim.ts";

/** Options of `watch`. */
export interface WatchOptions extends SchedulerOptions, RetentionOptions, CompactionSettings {
  /** At shutdown, how long to wait for the last uploads before exiting anyway. */
  shutdownGraceMs: number;
  /** Config globs and metrics (src/metrics/hooks.ts). */
  operations?: Operations;
}

/** Default tunables (see the README); some can be changed through the environment for tests. */
export const WATCH_DEFAULTS: Omit<WatchOptions, "syncIntervalMs" | "snapshotIntervalMs"> = {
  leaseMs: DEFAULT_LEASE_MS,
  checkpointFrames: 1000,
  barrierTimeoutMs: 200,
  concurrency: 8,
  fsEvents: Deno.env.get("WALSYNC_FS_EVENTS") !== "0",
  lockWaitMs: envMs("WALSYNC_LOCK_WAIT_MS", 10_000),
  reportIntervalMs: envMs("WALSYNC_REPORT_INTERVAL_MS", 60_000),
  shutdownGraceMs: envMs("WALSYNC_SHUTDOWN_GRACE_MS", 5_000),
};

function envMs(name: string, fallback: number): number {
  const value = Number(Deno.env.get(name));
  return Number.isFinite(value) && value > 0 ? value : fallback;
}

/** Watches `targets` until a signal arrives; returns the exit code. */
export async function watchCommand(
  store: Store,
  targets: WatchTarget[],
  options: WatchOptions,
): Promise<number> {
  const ops = options.operations;
  armClockStep();
  const scheduler = new WatchScheduler(
    store,
    targets,
    options,
    (replica, error) => ops?.synced(replica, error),
  );
  const retention = new BackgroundRetention(store, () => scheduler.loops.map((l) => l.name), {
    ...options,
    retentionOf: (name) => scheduler.loops.find((l) => l.name === name)?.target.retentionMs,
  });
  const compaction = new BackgroundCompaction(
    store,
    () =>
      scheduler.loops.map(({ name, replica }) => ({
        name,
        activity: replica && { source: replica, uploads: replica.stats.segments + replica.stats.snapshots },
      })),
    options,
  );
  const reclaimer = new MemoryReclaimer();
  retention.onPassEnd = compaction.onPassEnd = () => reclaimer.request();
  let signalled = false;
  const onSignal = (signal: Deno.Signal) => () => {
    if (signalled) {
      log.warn(`${signal} again: exiting immediately`);
      Deno.exit(ExitCode.Interrupted);
    }
    signalled = true;
    log.info(`${signal} received: shipping what is committed, then exiting`);
    scheduler.stop();
  };
  const handlers = (["SIGINT", "SIGTERM"] as const).map((s) => [s, onSignal(s)] as const);
  for (const [signal, handler] of handlers) Deno.addSignalListener(signal, handler);
  try {
    scheduler.start();
    const first = await Promise.race([scheduler.firstAttempts(), scheduler.stopped().then(() => null)]);
    if (scheduler.fatal) throw await finishWith(scheduler, options, scheduler.fatal);
    if (first) {
      const started = first.filter((o) => o === "started").length;
      const failures = first.flatMap((o) => (typeof o === "object" ? [o.failed] : []));
      if (failures.length === first.length && first.length > 0 && !ops?.dynamic) {
        // Nothing can be watched and nothing is worth retrying: say so instead of idling. One kind of
        // failure for all (every database locked by another watch, or every input not a SQLite
        // database) keeps its documented code (7, 2); a mix is a runtime failure.
        const codes = new Set(failures.map((e) => e.exitCode));
        const only = codes.size === 1 ? [...codes][0] : undefined;
        const code = only === ExitCode.Locked || only === ExitCode.Usage ? only : ExitCode.Failure;
        throw await finishWith(scheduler, options, new WalsyncError("no database could be watched", code));
      }
      const waiting = first.length - started;
      log.info(
        `watching ${started} database(s); sync every ${options.syncIntervalMs} ms` +
          (waiting
            ? `; ${waiting} not replicating yet (retried, and reported every ${
              options.reportIntervalMs / 1000
            } s)`
            : ""),
      );
    }
    ops?.started(() => scheduler.replicas(), {
      add: (target) => scheduler.add(target),
      remove: (path) => scheduler.remove(path),
    });
    retention.start();
    compaction.start();
    reclaimer.start(); // start-up's snapshots are done: give their garbage back
    await scheduler.stopped();
    reclaimer.stop();
    await Promise.all([retention.stop(), compaction.stop()]);
    await ops?.stop();
    const result = await scheduler.finish(options.shutdownGraceMs);
    if (scheduler.fatal) throw scheduler.fatal;
    log.info(
      `stopped: ${result.segments} segment(s) shipped, ${result.generationsStarted} generation(s) started`,
    );
    if (result.failed.length || result.unfinished.length) {
      log.error(
        `watch ended with errors: ${
          [
            ...result.failed.map((f) => `${f.name} (${f.reason})`),
            ...result.unfinished.map((n) => `${n} (unfinished)`),
          ]
            .join("; ")
        }`,
      );
      return ExitCode.Failure;
    }
    return ExitCode.Ok;
  } finally {
    for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
  }
}

/** Stops everything, waits for the databases to finish, and returns `error` to throw. */
async function finishWith(scheduler: WatchScheduler, options: WatchOptions, error: WalsyncError) {
  await options.operations?.stop();
  await scheduler.finish(options.shutdownGraceMs);
  return error;
}
