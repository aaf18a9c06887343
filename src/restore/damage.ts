/**
 * Damage: a backup object that is corrupted, truncated, missing, has unreadable metadata or does not
 * continue the chain of its generation. The same description serves `restore` (as the error it
 * stops with, exit code 4) and `verify` (as an entry of its report).
 * @module
 */
import { ExitCode, WalsyncError } from "../errors.ts";
import { formatGeneration } from "../layout.ts";

/** Why an object cannot be used. */
export type DamageReason = "missing" | "truncated" | "corrupt" | "metadata" | "chain";

/** What kind of object is damaged; "generation" is a whole generation that is gone. */
export type DamageKind = "snapshot" | "segment" | "pages" | "state" | "lease" | "generation";

/** One damaged or missing object. */
export interface Damage {
  /** Its key, or a description such as `app/wal/00000001-… (segment #5)` when it is missing. */
  object: string;
  /** Its key; null when the object is missing and its key cannot be known. */
  key: string | null;
  kind: DamageKind;
  generation: number | null;
  /** The segment index, when known. */
  index: number | null;
  reason: DamageReason;
  /** What is wrong, for a human (without the object's name). */
  message: string;
}

/** A restore stopped by a damaged object (exit code 4). */
export class DamageError extends WalsyncError {
  /**
   * @param damage what is damaged and why
   * @param url the store's URL, prefixed to the object's name in the message
   */
  constructor(readonly damage: Damage, url: string) {
    super(`${url}/${damage.object}: ${damage.message}`, ExitCode.Corrupt);
    this.name = "DamageError";
  }
}

/** Damage of an object whose key is known. */
export function damageOf(
  key: string,
  kind: DamageKind,
  reason: DamageReason,
  message: string,
  where: { generation?: number | null; index?: number | null } = {},
): Damage {
  return {
    object: key,
    key,
    kind,
    generation: where.generation ?? null,
    index: where.index ?? null,
    reason,
    message,
  };
}

/** Segments `from`..`to` (inclusive) of a generation are missing. */
export function missingSegments(
  name: string,
  generation: number,
  from: number,
  to: number,
  why: string,
): Damage {
  const which = from === to ? `segment #${from}` : `segments #${from}..#${to}`;
  return {
    object: `${name}/wal/${formatGeneration(generation)}-… (${which})`,
    key: null,
    kind: "segment",
    generation,
    index: from,
    reason: "missing",
    message: `${which} of generation ${formatGeneration(generation)} ${
      from === to ? "is" : "are"
    } missing: ${why}`,
  };
}

/** The snapshot a generation starts with is missing. */
export function missingStartSnapshot(name: string, generation: number, why: string): Damage {
  return {
    object: `${name}/snapshots/${formatGeneration(generation)}-… (starting snapshot)`,
    key: null,
    kind: "snapshot",
    generation,
    index: null,
    reason: "missing",
    message: `the snapshot generation ${formatGeneration(generation)} starts with is missing: ${why}`,
  };
}

/** Generations `from`..`to` (inclusive) are missing entirely. */
export function missingGenerations(name: string, from: number, to: number, why: string): Damage {
  const which = from === to
    ? `generation ${formatGeneration(from)}`
    : `generations ${formatGeneration(from)}..${formatGeneration(to)}`;
  return {
    object: `${name} ${which}`,
    key: null,
    kind: "generation",
    generation: from,
    index: null,
    reason: "missing",
    message: `missing entirely: ${why}`,
  };
}

/** Every snapshot and segment of a database is gone, although state.json says it was backed up. */
export function missingEverything(name: string, generation: number | null): Damage {
  return {
    object: `${name} (every generation)`,
    key: null,
    kind: "generation",
    generation,
    index: null,
    reason: "missing",
    message: "no snapshot or segment is stored, although its state.json shows it was backed up",
  };
}
