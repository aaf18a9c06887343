/**
 * state.json, the hint `watch` keeps per database (docs/design.md §4): restore never needs it, but it
 * is written only after the objects it mentions were stored, so it can reveal objects that are
 * gone from the end of the history, where no later object would show the hole.
 * @module
 */
import { ExitCode, WalsyncError } from "../errors.ts";
import { newSha256 } from "../hash.ts";
import { formatGeneration, stateKey } from "../layout.ts";
import type { ObjectInfo, Store } from "../storage/store.ts";
import { type Damage, damageOf, missingSegments } from "./damage.ts";
import { reusedChunks } from "./frames.ts";

/** A state.json is a few hundred bytes; anything much larger is not one. */
const MAX_STATE_BYTES = 64 * 1024;

/** What state.json says (only the fields walsync checks other objects against). */
export interface StateHint {
  /** The generation `watch` was writing. */
  generation: number | null;
  /** How many segments of that generation were stored when it was written. */
  nextSegmentIndex: number | null;
}

/** The result of reading state.json. */
export interface HintReading {
  key: string;
  present: boolean;
  /** Its content, when it was read and verified (never with `quick`). */
  hint: StateHint | null;
  damage: Damage | null;
}

/**
 * Reads and verifies `<name>/state.json`: its `sha256` metadata against the content, and the content
 * as JSON. With `quick`, only its metadata (HEAD).
 */
export async function readStateHint(store: Store, name: string, quick = false): Promise<HintReading> {
  const key = stateKey(name);
  const damaged = (reason: Damage["reason"], message: string): HintReading => ({
    key,
    present: true,
    hint: null,
    damage: damageOf(key, "state", reason, message),
  });
  const info = await fetchState(store, key, quick);
  if (!info) return { key, present: false, hint: null, damage: null };
  const body = "body" in info ? (info.body as ReadableStream<Uint8Array>) : null;
  const stored = info.metadata.sha256;
  if (!stored) {
    await body?.cancel().catch(() => {});
    return damaged("metadata", "no sha256 in its metadata");
  }
  if (!body) return { key, present: true, hint: null, damage: null };
  const content = await readSmall(body);
  if (!content) return damaged("corrupt", `larger than ${MAX_STATE_BYTES} bytes: not a state.json`);
  const actual = newSha256().update(content).digest("hex");
  if (actual !== stored) {
    return damaged(
      "corrupt",
      `SHA-256 mismatch (stored ${stored}, content ${actual}); the object is corrupted`,
    );
  }
  const hint = parseHint(content);
  if (!hint) return damaged("corrupt", "not a JSON object");
  return { key, present: true, hint, damage: null };
}

/** GET (or HEAD with `quick`) of state.json; null when it does not exist. */
export async function fetchState(store: Store, key: string, quick: boolean): Promise<ObjectInfo | null> {
  if (quick) return await store.head(key);
  try {
    return await store.get(key);
  } catch (e) {
    if (e instanceof WalsyncError && e.exitCode === ExitCode.NotFound) return null;
    throw e;
  }
}

/** Reads a body of at most {@link MAX_STATE_BYTES}; null (and the body released) if it is larger. */
export async function readSmall(body: ReadableStream<Uint8Array>): Promise<Uint8Array | null> {
  const content = new Uint8Array(MAX_STATE_BYTES);
  let length = 0;
  for await (const chunk of reusedChunks(body)) {
    if (length + chunk.byteLength > MAX_STATE_BYTES) {
      await body.cancel().catch(() => {});
      return null;
    }
    content.set(chunk, length);
    length += chunk.byteLength;
  }
  return content.subarray(0, length);
}

/** Parses the fields of state.json walsync checks; null if it is not a JSON object. */
function parseHint(content: Uint8Array): StateHint | null {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(content));
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
  const count = (v: unknown) => (Number.isSafeInteger(v) && (v as number) >= 0 ? v as number : null);
  const fields = value as Record<string, unknown>;
  return { generation: count(fields.generation), nextSegmentIndex: count(fields.nextSegmentIndex) };
}

/**
 * The segments state.json says generation `generation` had beyond `nextIndex` (the index after the
 * last stored one), as damage; null when it says nothing more.
 */
export function hintedTail(
  name: string,
  generation: number,
  nextIndex: number,
  hint: StateHint | null,
): Damage | null {
  if (!hint || hint.generation !== generation || hint.nextSegmentIndex === null) return null;
  if (hint.nextSegmentIndex <= nextIndex) return null;
  return missingSegments(
    name,
    generation,
    nextIndex,
    hint.nextSegmentIndex - 1,
    `state.json records ${hint.nextSegmentIndex} segment(s) in generation ${formatGeneration(generation)}`,
  );
}
