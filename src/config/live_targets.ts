/**
 * Databases that come and go while `watch` runs (globs in the config file): the glob poll queues
 * changes, and the watch loop applies them between two rounds, so that a replica is never added
 * or stopped while a round is using the list.
 * @module
 */
import * as log from "../log.ts";
import type { Store } from "../storage/store.ts";
import { Replica, type ReplicaOptions } from "../watch/replica.ts";
import type { WatchTarget } from "../watch/targets.ts";
import type { WatchConfig } from "./load.ts";
import { type ConfiguredTarget, watchGlobs } from "./globs.ts";

/** Queued additions and removals of watched databases. */
export class LiveTargets {
  #added: Replica[] = [];
  #removed = new Set<string>();
  #stop: () => void;
  #stopped = false;

  /** Starts polling the globs of `config`; `initial` are the targets the watch started with. */
  constructor(config: WatchConfig, initial: WatchTarget[], store: Store, options: ReplicaOptions) {
    this.#stop = watchGlobs(config, initial, async (target: ConfiguredTarget) => {
      log.registerDatabase(target.name);
      const replica = new Replica(target.path, target.name, store, { ...options, ...target.overrides });
      try {
        await replica.start();
      } catch (e) {
        log.error(`${target.name}: ${(e as Error).message}`);
        return false;
      }
      // Started while the watch was stopping: release its lease at once instead of leaving it held.
      if (this.#stopped) await replica.stop().catch(() => {});
      else this.#added.push(replica);
      return true;
    }, (target) => {
      this.#removed.add(target.path);
    });
  }

  /** Applies the queued changes to `replicas` (call between rounds). */
  async apply(replicas: Replica[]): Promise<void> {
    replicas.push(...this.#added.splice(0));
    for (const path of this.#removed) {
      const index = replicas.findIndex((r) => r.path === path);
      if (index < 0) continue;
      const [replica] = replicas.splice(index, 1);
      await replica.stop().catch((e) => log.warn(`${replica.name}: stopping: ${(e as Error).message}`));
    }
    this.#removed.clear();
  }

  /** Stops the poll; replicas added since the last {@link apply} are stopped too. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#stop();
    for (const replica of this.#added.splice(0)) await replica.stop().catch(() => {});
  }
}
