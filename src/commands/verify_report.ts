/**
 * The report of `verify`: its shape (what `--json` prints, documented in the README) and the text a
 * person reads.
 * @module
 */
import { formatGeneration } from "../layout.ts";
import type { Damage } from "../restore/damage.ts";

/** An object that is not damaged but was not checked either (e.g. an unknown key). */
export interface VerifyWarning {
  key: string;
  message: string;
}

/** A duplicate segment that is not on the chain (a warning: not damage, not needed by any restore). */
export interface VerifyOrphan {
  key: string;
  generation: number;
  /** The segment index it duplicates. */
  index: number;
  /** The key that holds that place on the chain, when known. */
  instead: string | null;
}

/** One generation in the report. */
export interface VerifiedGeneration {
  generation: number;
  snapshots: number;
  segments: number;
  /** Compacted page sets (docs/design.md §11.1). */
  pageSets: number;
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
  /** Duplicate segments set aside (pick the one that continues the chain; the other is an orphan). */
  orphans: VerifyOrphan[];
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
  for (const o of db.orphans) {
    lines.push(
      `  ORPHAN ${o.key}: a duplicate of segment #${o.index} that is not on the chain${
        o.instead ? ` (${o.instead} is)` : ""
      }; not needed by any restore`,
    );
  }
  for (const w of db.warnings) lines.push(`  WARNING ${w.key}: ${w.message}`);
  return lines;
}
