/**
 * Databases that come and go while `watch` runs (globs in the config file): the glob poll reports
 * new matches and vanished files, and the watch scheduler starts or stops their loops.
 * @module
 */
import * as log from "../log.ts";
import type { WatchTarget } from "../watch/targets.ts";
import type { WatchConfig } from "./load.ts";
import { type ConfiguredTarget, watchGlobs } from "./globs.ts";

/** What the watch scheduler offers for databases found or lost while running. */
export interface TargetSink {
  /** Starts replicating `target` (it retries by itself if it cannot start yet). */
  add(target: WatchTarget): void;
  /** Stops replicating the database at `path` (ships what is committed, releases its lease). */
  remove(path: string): Promise<void>;
}

/** Polls the globs of a config file and hands new and vanished databases to a {@link TargetSink}. */
export class LiveTargets {
  #stop: () => void;

  /** Starts polling the globs of `config`; `initial` are the targets the watch started with. */
  constructor(config: WatchConfig, initial: WatchTarget[], sink: TargetSink) {
    this.#stop = watchGlobs(config, initial, (target: ConfiguredTarget) => {
      log.registerDatabase(target.name);
      sink.add(target);
      return Promise.resolve(true);
    }, async (target) => {
      await sink.remove(target.path);
    });
  }

  /** Stops the poll. */
  stop(): Promise<void> {
    this.#stop();
    return Promise.resolve();
  }
}
