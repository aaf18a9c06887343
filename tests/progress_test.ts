/**
 * Progress of snapshot and restore (issue #12): one line redrawn on stderr when it is a terminal
 * (tested under a pseudo-terminal made by `script`), cleared at the end; nothing when stderr is not
 * a terminal, with --quiet, or with JSON logs.
 */
import assert from "node:assert/strict";
import { formatBytes, formatProgress } from "../src/progress.ts";
import { cleanup, filesEqual, MAIN, mustRun, tempDir, walsync } from "./helpers.ts";

Deno.test("progress line: bytes, percentage, rate and ETA", () => {
  assert.equal(formatBytes(512), "512 B");
  assert.equal(formatBytes(1536), "1.5 KiB");
  assert.equal(formatBytes(40 * 1024 * 1024), "40.0 MiB");
  assert.equal(
    formatProgress('restore "a"', 10 * 1024 * 1024, 40 * 1024 * 1024, 2000),
    'restore "a": 10.0 MiB / 40.0 MiB (25%), 5.0 MiB/s, ETA 6s',
  );
  assert.equal(formatProgress("x", 0, 100, 0), "x: 0 B / 100 B (0%), 0 B/s");
  assert.match(formatProgress("x", 1000, 10_000_000, 1000), /, 1000 B\/s, ETA 2h 46m$/);
});

/** Runs `walsync ARGS` under a pseudo-terminal; returns everything it wrote to it. */
async function underTerminal(dir: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const vars = Object.entries({ NO_COLOR: "1", WALSYNC_PROGRESS_DELAY_MS: "0", ...env }).map(([k, v]) =>
    `${k}=${quote(v)}`
  );
  const command = ["env", ...vars, Deno.execPath(), "run", "-A", "--quiet", MAIN, ...args].map((a, i) =>
    i > vars.length ? quote(a) : a
  ).join(" ");
  const transcript = `${dir}/transcript-${crypto.randomUUID().slice(0, 6)}`;
  await mustRun("script", ["-qfec", command, transcript]);
  const text = await Deno.readTextFile(transcript);
  return text.slice(text.indexOf("\n") + 1); // drop script's own header line
}

async function bigDatabase(dir: string): Promise<string> {
  const db = `${dir}/big.db`;
  await mustRun("python3", [
    "-c",
    `import sqlite3, os
db = sqlite3.connect(${JSON.stringify(db)})
db.execute("PRAGMA journal_mode=WAL")
db.execute("CREATE TABLE t(x BLOB)")
for i in range(300): db.execute("INSERT INTO t VALUES (?)", (os.urandom(100_000),))
db.commit()
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")`,
  ]);
  return db;
}

Deno.test("snapshot and restore show progress on a terminal, cleared at the end", async () => {
  const dir = await tempDir();
  const db = await bigDatabase(dir);
  const url = `file://${dir}/backups`;
  const snap = await underTerminal(dir, ["snapshot", db, "-b", url]);
  // Both passes show: the checksum (or, with the default zstd, compression), then the upload.
  assert.match(
    snap,
    /\rsnapshot "big" \((checksum|compress)\): [\d.]+ (B|KiB|MiB) \/ 28\.\d MiB \(\d+%\), [\d.]+ \w+\/s/,
  );
  assert.match(snap, /\rsnapshot "big" \(upload\): [\d.]+ (B|KiB|MiB) \/ 28\.\d MiB \(\d+%\), [\d.]+ \w+\/s/);
  // The line is cleared before anything else is written (the closing log line, then the result).
  // deno-lint-ignore no-control-regex
  assert.match(snap, /\x1b\[K\r\x1b\[2K(\S+ INFO snapshot of [^\n]*\n)?snapshot big generation 1: /);
  const restore = await underTerminal(dir, ["restore", "big", "-o", `${dir}/out.db`, "-b", url]);
  assert.match(restore, /\rrestore "big": [\d.]+ (B|KiB|MiB) \/ 28\.\d MiB \(\d+%\)/);
  assert.ok(restore.includes("\r\x1b[2Krestored big to "), restore);
  assert.ok(await filesEqual(`${dir}/out.db`, db));
  // --quiet and JSON logs: nothing but the result, even on a terminal.
  for (const extra of [["--quiet"], ["--log-format", "json"]]) {
    const quiet = await underTerminal(dir, [
      "restore",
      "big",
      "-o",
      `${dir}/out.db`,
      "--force",
      "-b",
      url,
      ...extra,
    ]);
    assert.ok(
      !quiet.includes("MiB") && !quiet.includes("\x1b["),
      `no progress with ${extra.join(" ")}:\n${quiet}`,
    );
    assert.match(quiet, /restored big to /);
  }
  // Not a terminal: no progress, no control characters.
  const piped = await walsync(["restore", "big", "-o", `${dir}/out.db`, "--force", "-b", url], {
    env: { WALSYNC_PROGRESS_DELAY_MS: "0" },
  });
  assert.equal(piped.code, 0, piped.stderr);
  const output = piped.stderr + piped.stdout;
  assert.ok(!output.includes("\r") && !output.includes("\x1b") && !output.includes("MiB/s"), output);
  await cleanup(dir);
});
