/**
 * Result rows of the benchmark suite, the Markdown table, `bench/out/results.json` and
 * `bench/RESULTS.md`.
 *
 * Units: throughput in MB/s (10^6 bytes per second), memory in MB (10^6 bytes) or KB (10^3 bytes),
 * as the goals of issue #5 are stated; times in seconds or milliseconds as labelled.
 * @module
 */

/** A goal of issue #5 and whether this run met it (null: could not be decided). */
export interface Goal {
  text: string;
  met: boolean | null;
}

/** One line of the results table: a walsync figure next to its reference from the same run. */
export interface Row {
  /** Figure number of issue #5 ("1" … "7"). */
  figure: string;
  /** What was measured, e.g. "snapshot of a 1 GiB database to S3". */
  what: string;
  /** The walsync figure (null if it could not be measured). */
  value: number | null;
  unit: string;
  /** What the figure is compared with, measured in the same run. */
  reference?: { what: string; value: number | null; unit: string };
  /** value / reference value (for throughputs: walsync's share of the reference). */
  ratio?: number | null;
  goal?: Goal;
  /** A short remark shown under the table. */
  note?: string;
}

/** Facts about the machine the run happened on. */
export interface Machine {
  nproc: number;
  cpu: string;
  memory: string;
  deno: string;
  kernel: string;
  /** Which walsync was measured (git revision of the checkout). */
  revision: string;
  date: string;
}

/** Everything written to bench/out/results.json. */
export interface Results {
  machine: Machine;
  options: { quick: boolean; only: string[] | null };
  /** Wall-clock seconds of each module. */
  durations: Record<string, number>;
  rows: Row[];
  /** Raw measurements of each module, for whoever wants to dig further. */
  details: Record<string, unknown>;
  /** Modules that failed, with their error. */
  failures: { module: string; error: string }[];
  /** Further Markdown sections printed after the table (e.g. the side-by-side table of figure 8). */
  extraMarkdown: string[];
}

/** Formats a number with a precision suited to its size ("-" for null/NaN). */
export function num(n: number | null | undefined, digits?: number): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "-";
  if (digits !== undefined) return n.toFixed(digits);
  const abs = Math.abs(n);
  if (abs === 0) return "0";
  if (abs >= 100) return n.toFixed(0);
  if (abs >= 10) return n.toFixed(1);
  if (abs >= 1) return n.toFixed(2);
  return n.toPrecision(2);
}

/** `value / reference`, or null when either is missing or the reference is 0. */
export function ratio(value: number | null, reference: number | null): number | null {
  if (value === null || reference === null || reference === 0) return null;
  return value / reference;
}

function goalCell(goal: Goal | undefined): string {
  if (!goal) return "";
  const verdict = goal.met === null ? "?" : goal.met ? "met" : "**NOT met**";
  return `${goal.text}: ${verdict}`;
}

/** The results as one Markdown table, rows in figure order, plus notes below it. */
export function markdownTable(rows: Row[]): string {
  const sorted = [...rows].sort((a, b) => a.figure.localeCompare(b.figure, "en", { numeric: true }));
  const lines = [
    "| # | measurement | walsync | reference (same run) | ratio | goal |",
    "|---|---|---:|---|---:|---|",
  ];
  const notes: string[] = [];
  for (const r of sorted) {
    const ref = r.reference
      ? `${r.reference.what}: ${num(r.reference.value)}${r.reference.unit ? " " + r.reference.unit : ""}`
      : "";
    const noteMark = r.note ? ` [${notes.push(r.note)}]` : "";
    lines.push(
      `| ${r.figure} | ${r.what}${noteMark} | ${num(r.value)} ${r.unit} | ${ref} | ` +
        `${r.ratio === undefined ? "" : num(r.ratio, 2)} | ${goalCell(r.goal)} |`,
    );
  }
  if (notes.length) lines.push("", ...notes.map((n, i) => `- [${i + 1}] ${n}`));
  return lines.join("\n");
}

/** The goals of the run, one bullet each, met ones first. */
export function goalSummary(rows: Row[]): string {
  const withGoal = rows.filter((r) => r.goal);
  if (withGoal.length === 0) return "(no goal was measured in this run)";
  const line = (r: Row) => `- ${r.goal!.text} (fig. ${r.figure}, ${r.what}): ${num(r.value)} ${r.unit}`;
  const met = withGoal.filter((r) => r.goal!.met === true);
  const missed = withGoal.filter((r) => r.goal!.met === false);
  const unknown = withGoal.filter((r) => r.goal!.met === null);
  return [
    `Met (${met.length}):`,
    ...met.map(line),
    "",
    `Not met (${missed.length}):`,
    ...(missed.length ? missed.map(line) : ["- none"]),
    ...(unknown.length ? ["", `Undecided (${unknown.length}):`, ...unknown.map(line)] : []),
  ].join("\n");
}

/** Marks the end of the generated part of RESULTS.md; whatever follows it is kept on rewrite. */
export const KEEP_MARKER =
  "<!-- end of generated results: hand-written notes below are kept by --write-results -->";

/** Builds RESULTS.md: generated header, machine, table and goals, then the kept hand-written part. */
export function resultsMarkdown(results: Results, kept: string, command: string): string {
  const m = results.machine;
  const failures = results.failures.length
    ? ["", "## Failures", "", ...results.failures.map((f) => `- ${f.module}: ${f.error}`)]
    : [];
  const minutes = Object.values(results.durations).reduce((a, b) => a + b, 0) / 60;
  return [
    "# walsync benchmark results",
    "",
    `Generated by \`${command}\` on ${m.date} (${num(minutes, 1)} min).`,
    results.options.quick ? "**Quick mode**: smaller sizes and shorter windows than the full suite.\n" : "",
    "## Machine",
    "",
    `- CPU: ${m.cpu}, ${m.nproc} cores (\`nproc\`)`,
    `- Memory (\`free -h\`): ${m.memory}`,
    `- Kernel ${m.kernel}, Deno ${m.deno}; walsync revision ${m.revision}`,
    "- On a shared or busy machine single figures are noisy: each is measured next to its reference",
    "  in the same run, and the ratio is what to compare across runs.",
    "",
    "## Results",
    "",
    "MB = 10^6 bytes, KB = 10^3 bytes. Ratio = walsync / reference.",
    "",
    markdownTable(results.rows),
    "",
    ...results.extraMarkdown.flatMap((section) => [section, ""]),
    "## Goals (issue #5)",
    "",
    goalSummary(results.rows),
    ...failures,
    "",
    KEEP_MARKER,
    kept,
  ].join("\n");
}
