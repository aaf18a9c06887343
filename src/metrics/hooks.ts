/**
 * What `watch` gets from the operations features (config globs, metrics): one object with a few
 * calls the watch loop makes at fixed points (see src/commands/watch.ts), so that these features
 * stay out of the loop itself.
 * @module
 */
import { LiveTargets, type TargetSink } from "../config/live_targets.ts";
import type { WatchSettings } from "../config/watch_settings.ts";
import * as log from "../log.ts";
import type { Replica } from "../watch/replica.ts";
import { registry } from "./registry.ts";
import { type MetricsServer, serveMetrics } from "./server.ts";
import { WatchMetrics } from "./watch_metrics.ts";

/** Calls the watch command makes; every one is optional for it. */
export interface Operations {
  /** True when databases may appear later (a glob): watching zero at start is fine. */
  readonly dynamic: boolean;
  /** After start-up: the replicas running now (read at each scrape), and where new databases go. */
  started(replicas: () => Replica[], sink: TargetSink): void;
  /** After each database's sync; `error` when it failed. */
  synced(replica: Replica, error?: unknown): void;
  /** When watch stops. */
  stop(): Promise<void>;
}

/** Builds the hooks for `settings`; starts the metrics server when an address is set. */
export function operationsHooks(settings: WatchSettings): { operations: Operations } {
  for (const target of settings.targets) log.registerDatabase(target.name);
  const metrics = new WatchMetrics(settings.syncIntervalMs);
  let server: MetricsServer | null = null;
  if (settings.metricsAddr) server = serveMetrics(settings.metricsAddr, registry, () => metrics.health());
  let live: LiveTargets | null = null;
  const config = settings.config;
  return {
    operations: {
      dynamic: config?.dbs.some((db) => db.glob) ?? false,
      started(replicas, sink) {
        metrics.watch(replicas);
        if (config) live = new LiveTargets(config, settings.targets, sink);
      },
      synced(replica, error) {
        metrics.synced(replica, error);
      },
      async stop() {
        await live?.stop();
        await server?.close();
      },
    },
  };
}
