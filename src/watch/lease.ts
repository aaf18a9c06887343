/**
 * One writer per database name (DESIGN.md §8): `watch` holds a lease object `<name>/lease.json`,
 * created with a conditional write (If-None-Match: *), renewed with If-Match on the version it
 * wrote, and deleted on exit. A second watcher refuses to start while the lease is valid; an
 * expired lease (its holder crashed) is taken over, again with If-Match, so that of two
 * competitors exactly one wins.
 * @module
 */
import { hostname } from "node:os";
import process from "node:process";
import { ExitCode, WalsyncError } from "../errors.ts";
import * as log from "../log.ts";
import { sha256Hex } from "../hash.ts";
import type { Store } from "../storage/store.ts";

/** What a lease object says. */
export interface LeaseRecord {
  holder: string;
  host: string;
  pid: number;
  acquired: string;
  /** ISO 8601: the holder must renew before this time; after it, anyone may take over. */
  expires: string;
  /**
   * Where `pid` means something: the kernel's boot id and the holder's pid namespace (Linux; absent
   * elsewhere). A watcher in the same scope may take the lease over as soon as that pid is gone.
   */
  scope?: string;
}

/** Default lease time; renewals happen every third of it (one small request per database). */
export const DEFAULT_LEASE_MS = 10 * 60 * 1000;

/** The key of a database's lease. */
export function leaseKey(name: string): string {
  return `${name}/lease.json`;
}

/** A held lease. */
export class Lease {
  #etag: string;
  #expires: number;

  private constructor(
    readonly store: Store,
    readonly name: string,
    readonly record: Omit<LeaseRecord, "expires">,
    etag: string,
    expires: number,
    readonly durationMs: number,
  ) {
    this.#etag = etag;
    this.#expires = expires;
  }

  /**
   * Takes the lease of `name`, or throws a WalsyncError (exit code 7) naming the current holder
   * and until when it holds it.
   */
  static async acquire(store: Store, name: string, durationMs = DEFAULT_LEASE_MS): Promise<Lease> {
    const record = {
      holder: `${hostname()}:${Deno.pid}:${crypto.randomUUID().slice(0, 8)}`,
      host: hostname(),
      pid: Deno.pid,
      acquired: new Date().toISOString(),
      ...(SCOPE ? { scope: SCOPE } : {}),
    };
    const key = leaseKey(name);
    for (let attempt = 0; attempt < 3; attempt++) {
      const expires = Date.now() + durationMs;
      const created = await store.putSmall(key, encode(record, expires), metadataOf(record, expires), {
        ifNoneMatch: "*",
      });
      if (created !== null) return new Lease(store, name, record, created, expires, durationMs);
      const current = await readLease(store, key);
      if (!current) continue; // released meanwhile: try to create it again
      if (holderIsGone(current.record)) {
        log.warn(
          `${name}: taking over the lease of ${current.record.holder}: that process (pid ${current.record.pid}, ` +
            `same host) no longer exists`,
        );
      } else if (Date.parse(current.record.expires) > Date.now()) {
        throw new WalsyncError(
          `"${name}" is already being replicated to ${store.url} by ${current.record.holder} ` +
            `(lease valid until ${current.record.expires}); refusing to start a second writer`,
          ExitCode.Locked,
        );
      }
      const taken = await store.putSmall(key, encode(record, expires), metadataOf(record, expires), {
        ifMatch: current.etag,
      });
      if (taken !== null) return new Lease(store, name, record, taken, expires, durationMs);
    }
    throw new WalsyncError(
      `could not take the lease of "${name}" in ${store.url}: another writer keeps racing for it`,
      ExitCode.Locked,
    );
  }

  /** True when a third of the lease time has passed since the last renewal. */
  renewalDue(now = Date.now()): boolean {
    return this.#expires - now < (this.durationMs * 2) / 3;
  }

  /** Extends the lease; throws if it was lost (someone took it over after it expired). */
  async renew(): Promise<void> {
    const expires = Date.now() + this.durationMs;
    const etag = await this.store.putSmall(
      leaseKey(this.name),
      encode(this.record, expires),
      metadataOf(this.record, expires),
      {
        ifMatch: this.#etag,
      },
    );
    if (etag === null) {
      throw new WalsyncError(
        `lost the lease of "${this.name}": another walsync took it over`,
        ExitCode.Locked,
      );
    }
    this.#etag = etag;
    this.#expires = expires;
  }

  /** Gives the lease up (deletes the object if it is still ours). */
  async release(): Promise<void> {
    const current = await readLease(this.store, leaseKey(this.name));
    if (current && current.etag === this.#etag) await this.store.delete(leaseKey(this.name));
  }
}

/** This process's scope (see {@link LeaseRecord.scope}), or null where it cannot be known. */
function localScope(): string | null {
  try {
    const boot = Deno.readTextFileSync("/proc/sys/kernel/random/boot_id").trim();
    const pidNamespace = Deno.readLinkSync("/proc/self/ns/pid");
    return boot && pidNamespace ? `${boot}/${pidNamespace}` : null;
  } catch {
    return null;
  }
}

const SCOPE = localScope();

/**
 * True when the holder was a process in our scope (same running kernel, same pid namespace: its pid
 * is one we can check) that no longer exists, killed or crashed: its lease may be taken over before
 * it expires, so that restarting walsync after a crash works at once. A host name is not enough (two
 * machines or containers can share one); a live process with that pid, even an unrelated one that
 * reuses it, keeps the lease: the safe side.
 */
function holderIsGone(record: LeaseRecord): boolean {
  if (
    !SCOPE || record.scope !== SCOPE || !Number.isSafeInteger(record.pid) || record.pid <= 0 ||
    record.pid === Deno.pid
  ) {
    return false;
  }
  try {
    process.kill(record.pid, 0);
    return false;
  } catch (e) {
    return (e as { code?: string }).code === "ESRCH";
  }
}

function encode(record: Omit<LeaseRecord, "expires">, expires: number): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ ...record, expires: new Date(expires).toISOString() }));
}

function metadataOf(record: Omit<LeaseRecord, "expires">, expires: number): Record<string, string> {
  return { sha256: sha256Hex(encode(record, expires)) };
}

/** Reads the current lease (null if there is none); an unreadable lease counts as expired. */
async function readLease(store: Store, key: string): Promise<{ record: LeaseRecord; etag: string } | null> {
  const head = await store.head(key);
  if (!head) return null;
  let record: LeaseRecord = {
    holder: "unknown",
    host: "",
    pid: 0,
    acquired: "",
    expires: new Date(0).toISOString(),
  };
  try {
    const data = await store.get(key);
    const parsed = JSON.parse(await new Response(data.body).text());
    if (typeof parsed.holder === "string" && typeof parsed.expires === "string") record = parsed;
  } catch { /* damaged lease: treat as expired */ }
  return { record, etag: head.etag ?? "" };
}
