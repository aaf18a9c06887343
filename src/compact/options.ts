/**
 * Compaction flags of `watch`: `--fine-history`, `--compaction-levels`, `--compaction-interval`
 * (docs/design.md §11.1).
 * @module
 */
import { parseInterval } from "../lifecycle/options.ts";
import type { CompactionSettings } from "./background.ts";
import { DEFAULT_FINE_HISTORY_MS, DEFAULT_LEVELS_MS, parseLevels } from "./levels.ts";

/** The compaction settings from `watch`'s parsed flags. */
export function compactionSettings(
  opts: { fineHistory?: string; compactionLevels?: string; compactionInterval?: string },
): CompactionSettings {
  const text = opts.compactionLevels?.trim().toLowerCase();
  const levels = text === "off" || text === "none" ? null : text ? parseLevels(text) : DEFAULT_LEVELS_MS;
  return {
    compactionLevelsMs: levels,
    fineHistoryMs: parseInterval(opts.fineHistory, "--fine-history", DEFAULT_FINE_HISTORY_MS),
    compactionIntervalMs: parseInterval(opts.compactionInterval, "--compaction-interval", levels?.[0] ?? 1),
  };
}
