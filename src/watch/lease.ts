/**
 * One writer per database name (docs/design.md §8): `watch` holds a lease object `<name>/lease.json`,
 * created with a conditional write (If-None-Match: *), renewed with If-Match on the version it
 * wrote, and marked released on exit (again with If-Match, so that a successor's lease is never
 * touched). A second watcher refuses to start while the lease is valid; an expired or released
 * lease (its holder crashed or exited) is taken over, again with If-Match, so that of two
 * competitors exactly one wins.
 *
 * The lease fences uploads: the holder renews it every third of its time, and stops uploading once
 * two thirds have passed since the last confirmed renewal ({@link Lease.canWrite}), one third before
 * anyone else may take it over; {@link FencedStore} enforces that on every write.
 * @module
 */
import { hostname } from "node:os";
import process from "node:process";
import { ExitCode, WalsyncError } from "../errors.ts";
import * as log from "../log.ts";
import { sha256Hex } from "../hash.ts";
import type { ListedObject, ObjectData, ObjectInfo, Store } from "../storage/store.ts";

/** What a lease object says. */
export interface LeaseRecord {
  holder: string;
  host: string;
  pid: number;
  acquired: string;
  /** ISO 8601: the holder must renew before this time; after it, anyone may take over. */
  expires: string;
  /** ISO 8601: set when the holder gave the lease up on exit (it is then free at once). */
  released?: string;
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
  /**
   * When the lease expires, on the monotonic clock (`performance.now()`): this process's own
   * decisions (renew, fence) must not move when the system clock is stepped. Other hosts judge the
   * wall-clock `expires` written in the record.
   */
  #expiresMonotonic: number;
  /** Set once someone else holds the lease (a renewal found another version, or none). */
  #lost: string | null = null;

  private constructor(
    readonly store: Store,
    readonly name: string,
    readonly record: Omit<LeaseRecord, "expires">,
    etag: string,
    expiresMonotonic: number,
    readonly durationMs: number,
  ) {
    this.#etag = etag;
    this.#expiresMonotonic = expiresMonotonic;
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
      const expiresMonotonic = performance.now() + durationMs; // from before the request: the safe side
      const created = await store.putSmall(key, encode(record, expires), metadataOf(record, expires), {
        ifNoneMatch: "*",
      });
      if (created !== null) return new Lease(store, name, record, created, expiresMonotonic, durationMs);
      const current = await readLease(store, key);
      if (!current) continue; // deleted meanwhile: try to create it again
      if (current.record.released) {
        // given up by its holder on exit: free
      } else if (holderIsGone(current.record)) {
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
      if (taken !== null) return new Lease(store, name, record, taken, expiresMonotonic, durationMs);
    }
    throw new WalsyncError(
      `could not take the lease of "${name}" in ${store.url}: another writer keeps racing for it`,
      ExitCode.Locked,
    );
  }

  /** When the next renewal is due (monotonic clock): a third of the lease time after the last one. */
  get renewalDueAt(): number {
    return this.#expiresMonotonic - (this.durationMs * 2) / 3;
  }

  /**
   * Until when uploads may start (monotonic clock, `performance.now()`): two thirds of the lease time
   * after the last renewal was sent.
   */
  get fenceAt(): number {
    return this.#expiresMonotonic - this.durationMs / 3;
  }

  /** Why the lease is no longer ours (null while it is). */
  get lost(): string | null {
    return this.#lost;
  }

  /** True while this holder may write: the lease is ours and was renewed recently enough. */
  canWrite(now = performance.now()): boolean {
    return this.#lost === null && now < this.fenceAt;
  }

  /**
   * Extends the lease (If-Match on the version we wrote: it works even after expiry, as long as
   * nobody took it over). Throws a WalsyncError with exit code 7 if it was lost (and {@link lost}
   * says so from then on); a transient store failure is thrown as is and can be retried.
   */
  async renew(): Promise<void> {
    if (this.#lost) throw new WalsyncError(this.#lost, ExitCode.Locked);
    const expires = Date.now() + this.durationMs; // counted from before the request: the safe side
    const expiresMonotonic = performance.now() + this.durationMs;
    let etag: string | null;
    try {
      etag = await this.store.putSmall(
        leaseKey(this.name),
        encode(this.record, expires),
        metadataOf(this.record, expires),
        { ifMatch: this.#etag },
      );
    } catch (e) {
      // A conditional write on a deleted lease answers "not found" on some stores: lost too.
      if (!(e instanceof WalsyncError) || e.exitCode !== ExitCode.NotFound) throw e;
      etag = null;
    }
    if (etag === null) {
      const current = await readLease(this.store, leaseKey(this.name)).catch(() => null);
      this.#lost = `lost the lease of "${this.name}": ` +
        (current ? `${current.record.holder} holds it now` : "someone removed it");
      throw new WalsyncError(this.#lost, ExitCode.Locked);
    }
    this.#etag = etag;
    this.#expiresMonotonic = expiresMonotonic;
  }

  /**
   * Gives the lease up: overwrites it with a released record, only if it is still the version we
   * wrote (If-Match), so a successor's lease is never touched. (A plain DELETE is not conditional
   * on every store; the released record is free for the next watcher at once.) Returns false if
   * the lease was no longer ours.
   */
  async release(): Promise<boolean> {
    if (this.#lost) return false;
    const now = Date.now();
    const record = { ...this.record, released: new Date(now).toISOString() };
    const etag = await this.store.putSmall(
      leaseKey(this.name),
      encode(record, now),
      metadataOf(record, now),
      {
        ifMatch: this.#etag,
      },
    ).catch((e) => {
      if (e instanceof WalsyncError && e.exitCode === ExitCode.NotFound) return null;
      throw e;
    });
    this.#lost = `released the lease of "${this.name}"`;
    return etag !== null;
  }
}

/**
 * A {@link Store} whose writes are allowed only while `lease` may write ({@link Lease.canWrite}):
 * a watcher that could not renew its lease in time stops uploading before anyone else may take
 * the lease over. Reads pass through.
 */
export class FencedStore implements Store {
  readonly url: string;

  /** @param lease the lease in force (it changes when a lost lease is taken again); null: none */
  constructor(readonly inner: Store, readonly lease: () => Lease | null) {
    this.url = inner.url;
  }

  #check(key: string): void {
    const lease = this.lease();
    if (lease?.canWrite()) return;
    throw new WalsyncError(
      `not writing ${key}: ${lease?.lost ?? "the lease could not be renewed in time"}`,
      ExitCode.Locked,
    );
  }

  usesContentMd5(size: number): boolean {
    return this.inner.usesContentMd5?.(size) ?? true;
  }

  put(...args: Parameters<Store["put"]>): Promise<void> {
    this.#check(args[0]);
    return this.inner.put(...args);
  }

  putSmall(...args: Parameters<Store["putSmall"]>): Promise<string | null> {
    this.#check(args[0]);
    return this.inner.putSmall(...args);
  }

  delete(key: string): Promise<void> {
    this.#check(key);
    return this.inner.delete(key);
  }

  abortIncompleteUploads(prefix: string): Promise<number> {
    this.#check(prefix);
    return this.inner.abortIncompleteUploads?.(prefix) ?? Promise.resolve(0);
  }

  get(key: string): Promise<ObjectData> {
    return this.inner.get(key);
  }

  head(key: string): Promise<ObjectInfo | null> {
    return this.inner.head(key);
  }

  deleteMany(keys: string[]): Promise<void> {
    this.#check(keys[0] ?? "(nothing)");
    return this.inner.deleteMany(keys);
  }

  list(prefix: string, startAfter?: string): AsyncIterable<ListedObject> {
    return this.inner.list(prefix, startAfter);
  }

  /** The inner store's codec: what is written through the fence is encoded the same way. */
  get codec(): Store["codec"] {
    return this.inner.codec;
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
