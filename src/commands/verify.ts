/**
 * `walsync verify`: checks every object of every generation of each database, as a restore would
 * (SHA-256, WAL frame checksums and salts, continuity of the chain), without writing anything
 * anywhere, and reports what can be restored and what is damaged or missing. With `quick`, only
 * the metadata (HEAD): missing objects, broken chains and wrong sizes are found, flipped bytes not.
 * @module
 */
import {
  type DatabaseHistory,
  type GenerationHistory,
  missingGenerations,
  readAllHistories,
  readHistory,
} from "../log/history.ts";
import { chainOrder } from "../log/duplicates.ts";
import { mapOrdered } from "../log/prefetch.ts";
import { notFoundError } from "../errors.ts";
import { formatGeneration, stateKey, validateName } from "../layout.ts";
import { checkLease } from "../restore/lease_check.ts";
import { leaseKey } from "../watch/lease.ts";
import { uploadLeftovers } from "../storage/file.ts";
import type { ListedObject, Store } from "../storage/store.ts";
import * as log from "../log.ts";
import { inspectObject } from "../restore/apply.ts";
import { compactedChain } from "../compact/verify_chain.ts";
import { proveSnapshots } from "../restore/prove.ts";
import { analyzeChain, type ChainReport, type TimeRange } from "../restore/chain.ts";
import {
  type Damage,
  damageOf,
  missingEverything,
  missingGenerations as missingGenerationsDamage,
} from "../restore/damage.ts";
import { isPrunedStart, prunedMark, retainedView } from "../lifecycle/mark.ts";
import { hintedTail, type HintReading, readStateHint } from "../restore/state_hint.ts";

import type {
  VerifiedDatabase,
  VerifiedGeneration,
  VerifyOrphan,
  VerifyReport,
  VerifyWarning,
} from "./verify_report.ts";

export { formatVerifyReport } from "./verify_report.ts";
export type { VerifiedDatabase, VerifiedGeneration, VerifyOrphan, VerifyReport, VerifyWarning };

/** How many objects are checked at the same time (each streams through one small buffer). */
const CONCURRENCY = { full: 4, quick: 16 };

/** Options of `verify`. */
export interface VerifyOptions {
  /** Only read metadata (HEAD); do not download content. */
  quick?: boolean;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Verifies the databases `names` (all when empty) in `store`. Never writes to the store. */
export async function verifyCommand(
  store: Store,
  names: string[],
  options: VerifyOptions = {},
): Promise<VerifyReport> {
  const quick = options.quick ?? false;
  names.forEach(validateName);
  const stray: ListedObject[] = [];
  const databases: VerifiedDatabase[] = [];
  // Each database's state.json is read before its objects are listed: it is written after the objects
  // it mentions, so it can never be ahead of the listing.
  if (names.length) {
    for (const name of names) {
      const hint = await readStateHint(store, name, quick);
      const view = await retainedView(store, name); // history below a prune's mark is gone on purpose
      const db = await readHistory(view, name);
      if (!db || db.generations.length === 0) {
        const what = db
          ? `nothing restorable of "${name}" (no snapshot or segment)`
          : `no backup of "${name}"`;
        throw notFoundError(`${what} in ${store.url}`);
      }
      databases.push(await verifyDatabase(view, db, hint, quick));
    }
  } else {
    for await (const listed of readAllHistories(store, (entry) => stray.push(entry))) {
      const hint = await readStateHint(store, listed.name, quick);
      // Listed again after state.json, in case objects came meanwhile.
      const view = await retainedView(store, listed.name);
      const db = (await readHistory(view, listed.name)) ?? listed;
      databases.push(await verifyDatabase(view, db, hint, quick));
    }
    if (databases.length === 0) throw notFoundError(`no backups in ${store.url}`);
  }
  const warnings = stray.map(unknownObject);
  for (const prefix of names.length ? names.map((n) => `${n}/`) : [""]) {
    for (const key of await uploadLeftovers(store, prefix)) {
      warnings.push({
        key,
        message: "leftover of an interrupted upload (removed at the next watch or snapshot)",
      });
    }
  }
  return {
    url: store.url,
    mode: quick ? "quick" : "full",
    ok: databases.every((d) => d.ok),
    databases,
    warnings,
  };
}

/** Checks every object of `db` (streamed, generation by generation) and judges each chain. */
async function verifyDatabase(
  store: Store,
  db: DatabaseHistory,
  hint: HintReading,
  quick: boolean,
): Promise<VerifiedDatabase> {
  const count = db.generations.reduce(
    (n, g) => n + g.snapshots.length + (g.segments?.count ?? 0) + (g.pages?.count ?? 0),
    0,
  );
  log.info(`verifying "${db.name}": ${count} object(s) in ${db.generations.length} generation(s)`);
  const orphans: VerifyOrphan[] = [];
  const chains: ChainReport[] = [];
  // Encrypted objects checked without the key (their stored bytes only).
  const counts = { keyless: 0 };
  for (const g of db.generations) {
    chains.push(await verifyGeneration(store, db.name, g, quick, orphans, counts));
  }
  const lease = db.others.some((o) => o.key === leaseKey(db.name))
    ? await checkLease(store, leaseKey(db.name), quick)
    : null;
  // A full verify also proves each mid-generation snapshot against a replay of the chain before it.
  const proofs: Damage[] = [];
  // (Without the key, encrypted content cannot be replayed: the keyless warning says so.)
  if (!quick && counts.keyless === 0) {
    for (const g of db.generations) proofs.push(...await proveSnapshots(store, db.name, g));
  }
  const damaged = [
    ...chains.flatMap((chain, i) => chainDamage(db, db.generations[i], chain, hint))
      .filter((d) => !isPrunedStart(d, prunedMark(store))),
    ...proofs,
    ...stateDamage(db, hint),
    ...generationGaps(db, hint),
    ...(lease ? [lease] : []),
  ];
  const generations = db.generations.map((g, i) => summarize(g, chains[i], damaged));
  const ranges = chains.flatMap((c) => c.ranges);
  // Nothing restorable and no damage that says why (e.g. only lease.json is stored): report it.
  if (ranges.length === 0 && damaged.length === 0) {
    damaged.push(nothingRestorable(db));
  }
  const stateBytes = db.others.find((o) => o.key === hint.key)?.size ?? 0;
  return {
    name: db.name,
    ok: damaged.length === 0,
    objects: count + (hint.present ? 1 : 0),
    bytes: generations.reduce((n, g) => n + g.bytes, stateBytes),
    restorableFrom: ranges.length ? iso(Math.min(...ranges.map((r) => r.from))) : null,
    restorableTo: ranges.length ? iso(Math.max(...ranges.map((r) => r.to))) : null,
    generations,
    damaged,
    orphans,
    warnings: [
      ...db.others.filter((o) => o.key !== stateKey(db.name) && o.key !== leaseKey(db.name)).map(
        unknownObject,
      ),
      ...keylessWarning(db.name, counts.keyless),
    ],
  };
}

/** Encrypted objects checked without the key: their stored bytes only (a warning, not damage). */
function keylessWarning(name: string, count: number): VerifyWarning[] {
  if (count === 0) return [];
  return [{
    key: `${name}/`,
    message: `${count} encrypted object(s): stored bytes checked (SHA-256), content NOT checked ` +
      "(no encryption key given: set WALSYNC_ENCRYPTION_KEY or --encryption-key-file)",
  }];
}

/**
 * Checks one generation's objects in replay order, a bounded number at a time (segments streamed from
 * the listing), sets duplicates aside as orphans, and judges its chain.
 */
async function verifyGeneration(
  store: Store,
  name: string,
  g: GenerationHistory,
  quick: boolean,
  orphans: VerifyOrphan[],
  counts: { keyless: number },
): Promise<ChainReport> {
  // Compacted generations: page sets stand in for the segments compaction deleted (§11.1).
  const chain = await compactedChain(store, name, g, quick);
  const limit = quick ? CONCURRENCY.quick : CONCURRENCY.full;
  const inspections = mapOrdered(chain.objects, limit, (object) => {
    log.debug(`checking ${object.key}`);
    return chain.inspect(object, () => inspectObject(store, object, quick));
  });
  async function* onChain() {
    for await (const { item, orphan } of chainOrder(inspections, null)) {
      if (item.contentChecked === false) counts.keyless++;
      if (!orphan) {
        yield item;
        continue;
      }
      orphans.push({
        key: item.object.key,
        generation: g.generation,
        index: orphan.index,
        instead: orphan.instead,
      });
      // An orphan's own damage does not matter to any restore; it is still worth a line.
      if (item.damage) {
        log.warn(`${store.url}/${item.object.key}: orphan, and damaged: ${item.damage.message}`);
      }
    }
  }
  const report = await analyzeChain(name, g.generation, onChain());
  // The page sets not walked on the chain are checked on their own: a restore may read them.
  report.damages.push(...await chain.restDamage(limit));
  return report;
}

/** A database folder without a single snapshot or segment: `restore` would find nothing. */
function nothingRestorable(db: DatabaseHistory): Damage {
  const what = db.generations.length
    ? "no generation has a restorable snapshot"
    : `no snapshot or segment is stored (only ${db.others.map((o) => o.key).join(", ") || "nothing"})`;
  return {
    object: `${db.name} (every generation)`,
    key: null,
    kind: "generation",
    generation: null,
    index: null,
    reason: "missing",
    message: `nothing can be restored: ${what}`,
  };
}

/**
 * Generations missing between stored ones, or after them up to the one state.json records; or all of
 * them, when state.json remains but nothing else (a folder with only unknown keys, such as a lease
 * taken before the first upload, is not a backup yet).
 */
function generationGaps(db: DatabaseHistory, hint: HintReading): Damage[] {
  if (db.generations.length === 0) {
    return hint.present ? [missingEverything(db.name, hint.hint?.generation ?? null)] : [];
  }
  const last = db.generations.at(-1)!.generation;
  return missingGenerations(db, hint.hint?.generation ?? 0).map(([from, to]) =>
    missingGenerationsDamage(
      db.name,
      from,
      to,
      to > last
        ? `state.json records generation ${formatGeneration(to)}`
        : `walsync numbers generations consecutively, and generation ${formatGeneration(to + 1)} exists`,
    )
  );
}

/** The damage in a generation's chain, plus segments state.json says are missing from its end. */
function chainDamage(
  db: DatabaseHistory,
  g: GenerationHistory,
  chain: ChainReport,
  hint: HintReading,
): Damage[] {
  const tail = chain.nextIndex === null
    ? null
    : hintedTail(db.name, g.generation, chain.nextIndex, hint.hint);
  return tail ? [...chain.damages, tail] : chain.damages;
}

/**
 * state.json's own damage; and its absence where `watch` would have written one (a database with
 * WAL segments: one-shot snapshots do not write state.json).
 */
function stateDamage(db: DatabaseHistory, hint: HintReading): Damage[] {
  if (hint.damage) return [hint.damage];
  if (hint.present || !db.generations.some((g) => g.segments !== null)) return [];
  return [
    damageOf(
      hint.key,
      "state",
      "missing",
      "does not exist, although watch writes one for every database it replicates (this one has WAL segments)",
    ),
  ];
}

/** One generation's entry in the report. */
function summarize(g: GenerationHistory, chain: ChainReport, damaged: Damage[]): VerifiedGeneration {
  return {
    generation: g.generation,
    snapshots: g.snapshots.length,
    segments: g.segments?.count ?? 0,
    pageSets: g.pages?.count ?? 0,
    bytes: g.snapshots.reduce((n, o) => n + o.size, (g.segments?.bytes ?? 0) + (g.pages?.bytes ?? 0)),
    ok: !damaged.some((d) =>
      d.generation === g.generation && d.kind !== "state" && d.kind !== "lease" && d.kind !== "generation"
    ),
    restorable: chain.ranges.map((r: TimeRange) => ({ from: iso(r.from), to: iso(r.to) })),
    unreachable: chain.unreachable,
  };
}

function unknownObject(o: ListedObject): VerifyWarning {
  return { key: o.key, message: "unknown object, not checked" };
}
