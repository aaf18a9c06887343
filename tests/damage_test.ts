/**
 * Damage (issue #4): for each kind of object (snapshot, segment, state.json) and each kind of damage
 * (a flipped byte with the metadata kept, truncation, deletion), on RGW and file://:
 * - `verify` reports exactly that object, and only it, with exit code 4 (`--quick` too, where the
 *   damage shows without downloading content);
 * - `restore` either fails naming it (exit 4, nothing written), or restores from another snapshot or
 *   generation that covers the requested time and says so on stderr.
 * Each case damages its own copy of one backup written by the real CLI (`walsync watch` and
 * `walsync snapshot`) while a separate writer process was writing.
 */
import assert from "node:assert/strict";
import {
  cloneBackend,
  damageObject,
  deleteObject,
  filesEqual,
  filesIn,
  keyTime,
  makeWatchedBackup,
  sqlite3,
  tempDir,
  walsync,
  type WatchedBackup,
  writer,
} from "./helpers.ts";

/** What verify must report for a case (compared with its one `damaged` entry). */
interface Expected {
  key: string | null;
  kind: "snapshot" | "segment" | "state";
  reason: string;
  generation?: number;
  index?: number;
  /** A part of the object's name (for a missing object whose key cannot be known). */
  object?: string;
}

/** What restore must do. */
type RestoreOutcome =
  /** Fails with exit 4 naming the object (`names`: a regex source). */
  | { fails: string }
  /** Succeeds from another snapshot or generation and says so: a WARN line naming both. */
  | { fallsBackTo: number; exact: boolean }
  /** Succeeds (the object is not needed for this restore), equal to the source; optional WARN naming it. */
  | { succeeds: true; warns: boolean };

interface Case {
  title: string;
  how: "flip" | "truncate" | "delete";
  /** The object to damage. */
  target: (f: WatchedBackup) => string;
  expected: (f: WatchedBackup) => Expected;
  /** Whether `verify --quick` (metadata only) sees it. */
  quick: boolean;
  /** The point in time to restore (ISO 8601; latest when undefined). */
  at?: (f: WatchedBackup) => string;
  restore: (f: WatchedBackup) => RestoreOutcome;
}

const iso = (ms: number) => new Date(ms).toISOString();
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const segmentIndex = (f: WatchedBackup, key: string) => f.segments.indexOf(key);

/** A segment of generation 1 directly followed by another segment (no snapshot between them). */
function middleSegment(f: WatchedBackup): string {
  const i = f.objects.findIndex((k, i) =>
    i > 0 && k.includes("/wal/") && f.objects[i + 1]?.includes("/wal/") && f.objects[i + 2] !== undefined
  );
  assert.ok(i > 0, "the backup has two consecutive segments");
  return f.objects[i];
}

/** The object right after `key` in generation 1's replay order. */
const after = (f: WatchedBackup, key: string) => f.objects[f.objects.indexOf(key) + 1];

const newestSnapshot = (f: WatchedBackup) => f.snapshots.at(-1)!;
const state = (f: WatchedBackup) => `${f.name}/state.json`;

const CASES: Case[] = [
  ...(["flip", "truncate"] as const).map((how): Case => ({
    title: `${how} of the newest snapshot: restore uses the previous snapshot of the same generation`,
    how,
    target: newestSnapshot,
    expected: (f) => ({
      key: newestSnapshot(f),
      kind: "snapshot",
      reason: how === "flip" ? "corrupt" : "truncated",
      generation: 1,
    }),
    quick: how === "truncate",
    restore: () => ({ fallsBackTo: 1, exact: true }),
  })),
  {
    title: "deletion of a generation's starting snapshot",
    how: "delete",
    target: (f) => f.snapshots[0],
    expected: () => ({
      key: null,
      kind: "snapshot",
      reason: "missing",
      generation: 1,
      object: "app/snapshots/00000001-… (starting snapshot)",
    }),
    quick: true,
    at: (f) => iso(keyTime(f.segments[0])),
    restore: () => ({ fails: escape("app/snapshots/00000001-… (starting snapshot)") }),
  },
  {
    title: "flip in a one-shot snapshot: restore falls back to the older generation that covers the time",
    how: "flip",
    target: (f) => f.oneShot,
    expected: (f) => ({ key: f.oneShot, kind: "snapshot", reason: "corrupt", generation: 2 }),
    quick: false,
    at: (f) => iso(keyTime(f.oneShot)),
    restore: () => ({ fallsBackTo: 1, exact: false }),
  },
  ...(["flip", "truncate"] as const).map((how): Case => ({
    title: `${how} of a segment`,
    how,
    target: middleSegment,
    expected: (f) => ({
      key: middleSegment(f),
      kind: "segment",
      reason: how === "flip" ? "corrupt" : "truncated",
      generation: 1,
      index: segmentIndex(f, middleSegment(f)),
    }),
    quick: how === "truncate",
    at: (f) => iso(keyTime(middleSegment(f))),
    restore: (f) => ({ fails: escape(middleSegment(f)) }),
  })),
  {
    title: "deletion of a segment in the middle of the chain",
    how: "delete",
    target: middleSegment,
    expected: (f) => ({
      key: null,
      kind: "segment",
      reason: "missing",
      generation: 1,
      index: segmentIndex(f, middleSegment(f)),
      object: `(segment #${segmentIndex(f, middleSegment(f))})`,
    }),
    quick: true,
    at: (f) => iso(keyTime(after(f, middleSegment(f)))),
    restore: (f) => ({ fails: escape(`(segment #${segmentIndex(f, middleSegment(f))})`) }),
  },
  {
    title: "deletion of the last segment (state.json shows it)",
    how: "delete",
    target: (f) => f.segments.at(-1)!,
    expected: (f) => ({
      key: null,
      kind: "segment",
      reason: "missing",
      generation: 1,
      index: f.segments.length - 1,
      object: `(segment #${f.segments.length - 1})`,
    }),
    quick: false, // the end of the chain is only known from state.json's content
    restore: (f) => ({ fails: escape(`(segment #${f.segments.length - 1})`) }),
  },
  ...(["flip", "truncate"] as const).map((how): Case => ({
    title: `${how} of state.json: restore does not need it`,
    how,
    target: state,
    expected: (f) => ({ key: state(f), kind: "state", reason: "corrupt" }),
    quick: false,
    restore: () => ({ succeeds: true, warns: true }),
  })),
  {
    title: "deletion of state.json",
    how: "delete",
    target: state,
    expected: (f) => ({ key: state(f), kind: "state", reason: "missing" }),
    quick: true,
    restore: () => ({ succeeds: true, warns: false }),
  },
];

/** Runs verify (`--json`) and checks it reports exactly `expected`. */
async function assertVerifyReports(f: WatchedBackup, expected: Expected, quick: boolean): Promise<void> {
  const args = ["verify", "-b", f.backend.url, "--json", ...(quick ? ["--quick"] : [])];
  const r = await walsync(args, { env: f.backend.env });
  assert.equal(r.code, 4, `verify${quick ? " --quick" : ""}: ${r.stdout}${r.stderr}`);
  const report = JSON.parse(r.stdout);
  assert.equal(report.ok, false);
  const damaged = report.databases.flatMap((d: { damaged: unknown[] }) => d.damaged);
  assert.equal(damaged.length, 1, `exactly one damaged object: ${JSON.stringify(damaged, null, 2)}`);
  const [d] = damaged;
  assert.equal(d.key, expected.key, JSON.stringify(d));
  assert.equal(d.kind, expected.kind);
  assert.equal(d.reason, expected.reason, d.message);
  if (expected.generation !== undefined) assert.equal(d.generation, expected.generation);
  if (expected.index !== undefined) assert.equal(d.index, expected.index);
  assert.ok(d.object.includes(expected.key ?? expected.object!), `${d.object} names ${expected.object}`);
  // The human report names it too.
  const text = await walsync(args.filter((a) => a !== "--json"), { env: f.backend.env });
  assert.equal(text.code, 4);
  assert.ok(text.stdout.includes(d.object), text.stdout);
}

/** Runs verify and checks it finds nothing wrong. */
async function assertVerifyOk(f: WatchedBackup, quick: boolean): Promise<void> {
  const r = await walsync(["verify", "-b", f.backend.url, "--json", ...(quick ? ["--quick"] : [])], {
    env: f.backend.env,
  });
  assert.equal(
    r.code,
    0,
    `verify${quick ? " --quick" : ""} must not see this damage: ${r.stdout}${r.stderr}`,
  );
}

/** Runs restore and checks the outcome. */
async function assertRestore(f: WatchedBackup, c: Case, damaged: string): Promise<void> {
  const outDir = await tempDir();
  const out = `${outDir}/out.db`;
  const at = c.at?.(f);
  const args = ["restore", f.name, "-o", out, "-b", f.backend.url, ...(at ? ["--point-in-time", at] : [])];
  const r = await walsync(args, { env: f.backend.env });
  const outcome = c.restore(f);
  if ("fails" in outcome) {
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, new RegExp(`ERROR .*${outcome.fails}`));
    assert.deepEqual(await filesIn(outDir), [], "nothing may be written to the output directory");
    return;
  }
  assert.equal(r.code, 0, r.stderr);
  if ("fallsBackTo" in outcome) {
    const warning = r.stderr.split("\n").find((l) => / WARN restored .* instead/.test(l));
    assert.ok(warning, `a WARN line says what was used instead: ${r.stderr}`);
    assert.ok(warning.includes(damaged), `the WARN line names ${damaged}: ${warning}`);
    assert.match(warning, new RegExp(`from generation 0000000${outcome.fallsBackTo} `));
  } else if (outcome.warns) {
    assert.match(r.stderr, new RegExp(`WARN .*${escape(damaged)}`));
  }
  if ("exact" in outcome && !outcome.exact) {
    assert.match((await writer("check", out)).trim(), /^ok \d+$/);
  } else {
    assert.ok(await filesEqual(out, f.db), "the restore equals the checkpointed source byte for byte");
  }
}

/** Damages a copy of the pristine backup as `c` says, then checks verify, verify --quick and restore. */
async function runCase(original: WatchedBackup, c: Case): Promise<void> {
  const f = { ...original, backend: await cloneBackend(original.backend) };
  const target = c.target(f);
  const expected = c.expected(f);
  if (c.how === "delete") await deleteObject(f.backend, target);
  else await damageObject(f.backend, target, c.how);

  await assertVerifyReports(f, expected, false);
  if (c.quick) await assertVerifyReports(f, expected, true);
  else await assertVerifyOk(f, true);
  await assertRestore(f, c, target);
}

/** Runs async functions at most `n` at a time. */
function limiter(n: number) {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    while (active >= n) await new Promise<void>((r) => waiting.push(r));
    active++;
    try {
      return await fn();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

for (const label of ["s3", "file"] as const) {
  // One pristine backup per backend; the cases run on copies of it, a few at a time (each is mostly
  // waiting for subprocesses), and each test waits for its own case.
  let cases: Map<Case, Promise<void>> | undefined;
  const startCases = () =>
    cases ??= (() => {
      const pristine = makeWatchedBackup(label).then(async (f) => {
        await sqlite3(f.db, "PRAGMA wal_checkpoint(TRUNCATE)"); // the source, as restores must equal it
        assert.ok(f.snapshots.length >= 2, "generation 1 has a scheduled snapshot");
        assert.ok(f.objects.at(-1)!.includes("/wal/"), "generation 1 ends with a segment");
        assert.ok(
          keyTime(f.objects.at(-1)!) > keyTime(f.oneShot),
          "generation 1 goes on after the one-shot snapshot",
        );
        return f;
      });
      const limit = limiter(4);
      return new Map(CASES.map((c) => {
        const done = pristine.then((f) => limit(() => runCase(f, c)));
        done.catch(() => {}); // reported by the case's own test
        return [c, done];
      }));
    })();

  for (const c of CASES) {
    Deno.test({
      name: `[${label}] damage: ${c.title} (${c.how})`,
      // The cases run concurrently, so work started for one test may still be running at the end of another.
      sanitizeOps: false,
      sanitizeResources: false,
      fn: () => startCases().get(c)!,
    });
  }
}
