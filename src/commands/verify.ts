/**
 * `walsync verify`: checks every object of every generation of each database, as a restore would
 * (SHA-256, WAL frame checksums and salts, continuity of the chain), without writing anything
 * anywhere, and reports what can be restored and what is damaged or missing. With `quick`, only
 * the metadata (HEAD): missing objects, broken chains and wrong sizes are found, flipped bytes not.
 * @module
 */
import { type DatabaseCatalog, type Generation, missingGenerations, readStore } from "../catalog.ts";
import { notFoundError } from "../errors.ts";
import { formatGeneration, stateKey, validateName } from "../layout.ts";
import { checkLease } from "../restore/lease_check.ts";
import { leaseKey } from "../watch/lease.ts";
import { uploadLeftovers } from "../storage/file.ts";
import type { ListedObject, Store } from "../storage/store.ts";
import * as log from "../log.ts";
import { type Inspection, inspectObject } from "../restore/apply.ts";
import { analyzeChain, type ChainReport, replayOrder, type TimeRange } from "../restore/chain.ts";
import {
  type Damage,
  damageOf,
  missingEverything,
  missingGenerations as missingGenerationsDamage,
} from "../restore/damage.ts";
import { hintedTail, type HintReading, readStateHint } from "../restore/state_hint.ts";

/** How many objects are checked at the same time (each streams through one small buffer). */
const CONCURRENCY = { full: 4, quick: 16 };

/** Options of `verify`. */
export interface VerifyOptions {
  /** Only read metadata (HEAD); do not download content. */
  quick?: boolean;
}

/** An object that is not damaged but was not checked either (e.g. an unknown key). */
export interface VerifyWarning {
  key: string;
  message: string;
}

/** One generation in the report. */
export interface VerifiedGeneration {
  generation: number;
  snapshots: number;
  segments: number;
  /** Total bytes of its objects (as listed). */
  bytes: number;
  /** No damage in this generation. */
  ok: boolean;
  /** Time ranges (ISO 8601, inclusive) that can be restored; empty if none. */
  restorable: { from: string; to: string }[];
  /** Segments that verified on their own but follow a break in the chain, so cannot be restored. */
  unreachable: number;
}

/** One database in the report. */
export interface VerifiedDatabase {
  name: string;
  ok: boolean;
  /** Objects checked (snapshots, segments, state.json) and their total size. */
  objects: number;
  bytes: number;
  /** The earliest and latest restorable times over all generations (ISO 8601), or null. */
  restorableFrom: string | null;
  restorableTo: string | null;
  generations: VerifiedGeneration[];
  damaged: Damage[];
  warnings: VerifyWarning[];
}

/** The whole report (`verify --json`; shape documented in the README). */
export interface VerifyReport {
  url: string;
  mode: "full" | "quick";
  /** True when nothing is damaged or missing (warnings allowed): exit code 0. */
  ok: boolean;
  databases: VerifiedDatabase[];
  /** Keys outside any database folder. */
  warnings: VerifyWarning[];
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Runs `fn` over `items`, at most `limit` at a time; results in the order of `items`. */
async function mapLimited<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (next < items.length && !failed) {
      const i = next++;
      try {
        results[i] = await fn(items[i]);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Verifies the databases `names` (all when empty) in `store`. Never writes to the store. */
export async function verifyCommand(
  store: Store,
  names: string[],
  options: VerifyOptions = {},
): Promise<VerifyReport> {
  const quick = options.quick ?? false;
  names.forEach(validateName);
  const everything = names.length ? null : await readStore(store);
  const targets = names.length ? names : everything!.databases.map((db) => db.name);
  if (targets.length === 0) throw notFoundError(`no backups in ${store.url}`);
  const listed = await listDatabases(store, targets, quick);
  const databases: VerifiedDatabase[] = [];
  for (const { db, hint } of listed) databases.push(await verifyDatabase(store, db, hint, quick));
  const warnings = (everything?.stray ?? []).map(unknownObject);
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

/**
 * Reads each database's state.json, then lists its objects (in that order: state.json is written
 * after the objects it mentions, so it can never be ahead of the listing).
 * @throws WalsyncError (not found) if a database has no objects at all.
 */
async function listDatabases(
  store: Store,
  names: string[],
  quick: boolean,
): Promise<{ db: DatabaseCatalog; hint: HintReading }[]> {
  const result = [];
  for (const name of names) {
    const hint = await readStateHint(store, name, quick);
    const [db] = (await readStore(store, [name])).databases;
    if (!db) throw notFoundError(`no backup of "${name}" in ${store.url}`);
    result.push({ db, hint });
  }
  return result;
}

/** Checks every object of `db` and judges the chain of each generation. */
async function verifyDatabase(
  store: Store,
  db: DatabaseCatalog,
  hint: HintReading,
  quick: boolean,
): Promise<VerifiedDatabase> {
  const ordered = db.generations.map(replayOrder);
  const objects = ordered.flat();
  log.info(`verifying "${db.name}": ${objects.length} object(s) in ${db.generations.length} generation(s)`);
  const inspections = await mapLimited(objects, quick ? CONCURRENCY.quick : CONCURRENCY.full, (object) => {
    log.debug(`checking ${object.key}`);
    return inspectObject(store, object, quick);
  });
  const chains = splitByGeneration(db.generations, ordered, inspections).map((list, i) =>
    analyzeChain(db.name, db.generations[i], list)
  );
  const lease = db.others.some((o) => o.key === leaseKey(db.name))
    ? await checkLease(store, leaseKey(db.name), quick)
    : null;
  const damaged = [
    ...chains.flatMap((chain, i) => chainDamage(db, db.generations[i], chain, hint)),
    ...stateDamage(db, hint),
    ...generationGaps(db, hint),
    ...(lease ? [lease] : []),
  ];
  const generations = db.generations.map((g, i) => summarize(g, chains[i], damaged));
  const ranges = chains.flatMap((c) => c.ranges);
  const stateBytes = db.others.find((o) => o.key === hint.key)?.size ?? 0;
  return {
    name: db.name,
    ok: damaged.length === 0,
    objects: objects.length + (hint.present ? 1 : 0),
    bytes: objects.reduce((n, o) => n + o.size, stateBytes),
    restorableFrom: ranges.length ? iso(Math.min(...ranges.map((r) => r.from))) : null,
    restorableTo: ranges.length ? iso(Math.max(...ranges.map((r) => r.to))) : null,
    generations,
    damaged,
    warnings: [
      ...db.others.filter((o) => o.key !== stateKey(db.name) && o.key !== leaseKey(db.name)).map(
        unknownObject,
      ),
      ...keylessWarning(db.name, quick ? 0 : inspections.filter((i) => i.contentChecked === false).length),
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
 * Generations missing between stored ones, or after them up to the one state.json records; or all of
 * them, when state.json remains but nothing else (a folder with only unknown keys, such as a lease
 * taken before the first upload, is not a backup yet).
 */
function generationGaps(db: DatabaseCatalog, hint: HintReading): Damage[] {
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

/** Splits the flat list of inspections back into one list per generation. */
function splitByGeneration(generations: Generation[], ordered: unknown[][], inspections: Inspection[]) {
  let offset = 0;
  return generations.map((_, i) => inspections.slice(offset, offset += ordered[i].length));
}

/** The damage in a generation's chain, plus segments state.json says are missing from its end. */
function chainDamage(db: DatabaseCatalog, g: Generation, chain: ChainReport, hint: HintReading): Damage[] {
  const tail = chain.nextIndex === null
    ? null
    : hintedTail(db.name, g.generation, chain.nextIndex, hint.hint);
  return tail ? [...chain.damages, tail] : chain.damages;
}

/**
 * state.json's own damage; and its absence where `watch` would have written one (a database with
 * WAL segments: one-shot snapshots do not write state.json).
 */
function stateDamage(db: DatabaseCatalog, hint: HintReading): Damage[] {
  if (hint.damage) return [hint.damage];
  if (hint.present || !db.generations.some((g) => g.segments.length > 0)) return [];
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
function summarize(g: Generation, chain: ChainReport, damaged: Damage[]): VerifiedGeneration {
  const objects = [...g.snapshots, ...g.segments];
  return {
    generation: g.generation,
    snapshots: g.snapshots.length,
    segments: g.segments.length,
    bytes: objects.reduce((n, o) => n + o.size, 0),
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

/** Formats the report for humans. */
export function formatVerifyReport(report: VerifyReport): string {
  const how = report.mode === "quick"
    ? "quick: metadata only, content not downloaded"
    : "full: every object downloaded and checked";
  const lines = [`verify ${report.url} (${how})`, ""];
  for (const db of report.databases) lines.push(...formatDatabase(db));
  for (const w of report.warnings) lines.push(`WARNING ${w.key}: ${w.message}`);
  const bad = report.databases.filter((d) => !d.ok);
  const problems = bad.reduce((n, d) => n + d.damaged.length, 0);
  const warnings = report.warnings.length + report.databases.reduce((n, d) => n + d.warnings.length, 0);
  lines.push(
    "",
    `${report.databases.length} database(s): ${
      report.databases.length - bad.length
    } OK, ${bad.length} damaged ` +
      `(${problems} damaged or missing object(s), ${warnings} warning(s))`,
  );
  return lines.join("\n") + "\n";
}

/** The lines of one database in the human report. */
function formatDatabase(db: VerifiedDatabase): string[] {
  const lines = [
    `${db.name}: ${
      db.ok ? "OK" : "DAMAGED"
    } (${db.generations.length} generation(s), ${db.objects} object(s), ` +
    `${db.bytes} bytes)`,
  ];
  for (const g of db.generations) {
    const ranges = g.restorable.map((r) => (r.from === r.to ? r.from : `${r.from} .. ${r.to}`)).join(", ");
    const unreachable = g.unreachable
      ? ` (${g.unreachable} intact segment(s) after a break cannot be restored)`
      : "";
    lines.push(
      `  generation ${formatGeneration(g.generation)}: ${
        ranges ? `restorable ${ranges}` : "NOT restorable"
      }` +
        unreachable,
    );
  }
  for (const d of db.damaged) {
    lines.push(`  ${d.reason === "missing" ? "MISSING" : "DAMAGED"} ${d.object}: ${d.message}`);
  }
  for (const w of db.warnings) lines.push(`  WARNING ${w.key}: ${w.message}`);
  return lines;
}
