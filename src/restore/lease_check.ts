/**
 * Checking a database's lease object (`<name>/lease.json`, held by a running `watch`): its
 * `sha256` metadata against its content, and the content as a lease record. A lease exists only
 * while a watcher runs, so its absence is never damage.
 * @module
 */
import { newSha256 } from "../hash.ts";
import type { Store } from "../storage/store.ts";
import { type Damage, damageOf } from "./damage.ts";
import { fetchState, readSmall } from "./state_hint.ts";

/** Verifies the lease at `key`; returns its damage, or null if it is fine (or absent). */
export async function checkLease(store: Store, key: string, quick: boolean): Promise<Damage | null> {
  const info = await fetchState(store, key, quick);
  if (!info) return null;
  const body = "body" in info ? (info.body as ReadableStream<Uint8Array>) : null;
  const stored = info.metadata.sha256;
  if (!stored) {
    await body?.cancel().catch(() => {});
    return damageOf(key, "lease", "metadata", "no sha256 in its metadata");
  }
  if (!body) return null;
  const content = await readSmall(body);
  if (!content) return damageOf(key, "lease", "corrupt", "too large to be a lease");
  const actual = newSha256().update(content).digest("hex");
  if (actual !== stored) {
    return damageOf(key, "lease", "corrupt", `SHA-256 mismatch (stored ${stored}, content ${actual})`);
  }
  try {
    const record = JSON.parse(new TextDecoder().decode(content));
    if (typeof record?.holder !== "string" || Number.isNaN(Date.parse(record?.expires))) throw new Error();
  } catch {
    return damageOf(key, "lease", "corrupt", "not a lease record (holder, expires)");
  }
  return null;
}
