/** Log lines (src/log.ts): the human format unchanged, and --log-format json for log shippers. */
import assert from "node:assert/strict";
import { configureLog, formatLine, logSettings, registerDatabase } from "../src/log.ts";
import { walsync } from "./helpers.ts";

Deno.test("log: human lines as before; JSON lines with time, level, database, message, fields", () => {
  const time = new Date("2026-11-30T01:02:03.456Z");
  const saved = logSettings();
  try {
    configureLog({ format: "human" });
    assert.equal(
      formatLine("warn", "app: upload failed", undefined, time),
      "2026-11-30T01:02:03.456Z WARN app: upload failed\n",
    );
    configureLog({ format: "json" });
    registerDatabase("app");
    assert.deepEqual(JSON.parse(formatLine("info", "app: snapshot done", undefined, time)), {
      time: "2026-11-30T01:02:03.456Z",
      level: "info",
      database: "app",
      message: "app: snapshot done",
    });
    // Only registered names count as a database; other "x: ..." prefixes are just text.
    assert.deepEqual(JSON.parse(formatLine("error", "internal error: boom", undefined, time)), {
      time: "2026-11-30T01:02:03.456Z",
      level: "error",
      message: "internal error: boom",
    });
    assert.deepEqual(
      JSON.parse(formatLine("info", "new database", { database: "t1", path: "/srv/t1.db", n: 2 }, time)),
      {
        time: "2026-11-30T01:02:03.456Z",
        level: "info",
        database: "t1",
        message: "new database",
        fields: { path: "/srv/t1.db", n: 2 },
      },
    );
    const line = formatLine("info", 'quote " and\nnewline', undefined, time);
    assert.equal(line.split("\n").length, 2, "one line per entry");
    assert.equal(JSON.parse(line).message, 'quote " and\nnewline');
  } finally {
    configureLog({ format: saved.format, level: saved.level });
  }
});

Deno.test("log: levels from -q/-v and an explicit level", () => {
  const saved = logSettings();
  try {
    configureLog({ quiet: true });
    assert.equal(logSettings().level, "warn");
    configureLog({ verbose: true });
    assert.equal(logSettings().level, "debug");
    configureLog({ level: "error", verbose: true });
    assert.equal(logSettings().level, "error");
    configureLog({ quiet: false, verbose: false });
    assert.equal(logSettings().level, "info");
  } finally {
    configureLog({ format: saved.format, level: saved.level });
  }
});

Deno.test("log: --log-format json on the command line, errors included (before or after the command)", async () => {
  for (
    const args of [["--log-format", "json", "list", "-b", "ftp://x"], [
      "list",
      "-b",
      "ftp://x",
      "--log-format",
      "json",
    ]]
  ) {
    const r = await walsync(args);
    assert.equal(r.code, 2);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    const entry = JSON.parse(lines[0]);
    assert.equal(entry.level, "error");
    assert.match(entry.message, /unsupported backup URL "ftp:\/\/x"/);
    assert.ok(!Number.isNaN(Date.parse(entry.time)));
  }
  const bad = await walsync(["list", "-b", "file:///x", "--log-format", "xml"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--log-format <FORMAT>' argument 'xml' is invalid/);
});
