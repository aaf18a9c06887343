/** Durations (src/duration.ts): every unit, bare seconds, and what is refused. */
import assert from "node:assert/strict";
import { formatAge, formatDuration, parseDuration } from "../src/duration.ts";

Deno.test("parseDuration: units, bare seconds, fractions, spaces", () => {
  const cases: [string | number, number][] = [
    ["500ms", 500],
    ["15s", 15_000],
    ["5m", 300_000],
    ["1h", 3_600_000],
    ["7d", 604_800_000],
    ["1", 1000],
    [1, 1000],
    ["0.5", 500],
    ["1.5s", 1500],
    [".25s", 250],
    [" 2m ", 120_000],
    ["10 s", 10_000],
  ];
  for (const [text, ms] of cases) assert.equal(parseDuration(text), ms, `"${text}"`);
});

Deno.test("parseDuration: refuses what is not a positive duration", () => {
  for (
    const text of ["", "0", "0s", "-1", "-5m", "1w", "5 minutes", "1e3", "abc", "1h30m", "NaN", "0.0001ms"]
  ) {
    assert.equal(parseDuration(text), null, `"${text}"`);
  }
});

Deno.test("formatDuration and formatAge", () => {
  assert.equal(formatDuration(500), "500ms");
  assert.equal(formatDuration(1500), "1.5s");
  assert.equal(formatDuration(15_000), "15s");
  assert.equal(formatDuration(300_000), "5m");
  assert.equal(formatDuration(7 * 86_400_000), "7d");
  assert.equal(formatAge(42.7), "42s");
  assert.equal(formatAge(185), "3m 5s");
  assert.equal(formatAge(7800), "2h 10m");
  assert.equal(formatAge(3 * 86400 + 4 * 3600 + 5), "3d 4h");
  assert.equal(formatAge(-3), "0s");
});
