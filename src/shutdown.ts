/**
 * SIGINT/SIGTERM handling for one-shot commands: run registered clean-ups (remove temporary
 * files, release locks), then exit with 130. Long-running commands (watch) install their own
 * handler that finishes the in-flight work first.
 * @module
 */
import * as log from "./log.ts";

const cleanups = new Set<() => void | Promise<void>>();
let installed = false;

/** Registers a clean-up to run if the process is interrupted; returns a function to unregister it. */
export function onInterrupt(cleanup: () => void | Promise<void>): () => void {
  if (!installed) {
    installed = true;
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      Deno.addSignalListener(signal, async () => {
        log.warn(`${signal} received: cleaning up and exiting`);
        for (const fn of cleanups) {
          try {
            await fn();
          } catch { /* best effort */ }
        }
        Deno.exit(130);
      });
    }
  }
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}
