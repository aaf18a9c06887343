/**
 * Times a user gives (src/time.ts): RFC 3339 with an explicit zone; impossible or ambiguous times
 * are refused with a usage error that shows an example.
 */
import assert from "node:assert/strict";
import { ExitCode, WalsyncError } from "../src/errors.ts";
import { parseTimestamp } from "../src/time.ts";

const accepted: [string, string][] = [
  ["2026-11-24T10:30:00Z", "2026-11-24T10:30:00.000Z"],
  ["2026-11-24t10:30:00z", "2026-11-24T10:30:00.000Z"], // lowercase t and z (RFC 3339 allows them)
  ["2026-11-24 10:30:00Z", "2026-11-24T10:30:00.000Z"], // a space instead of T
  ["2026-11-24T10:30Z", "2026-11-24T10:30:00.000Z"], // no seconds
  ["2026-11-24T10:30:00.5Z", "2026-11-24T10:30:00.500Z"],
  ["2026-11-24T10:30:00.123Z", "2026-11-24T10:30:00.123Z"],
  ["2026-11-24T10:30:00.123999999Z", "2026-11-24T10:30:00.123Z"], // cut, never rounded up
  ["2026-11-24T11:30:00+01:00", "2026-11-24T10:30:00.000Z"],
  ["2026-11-24T05:00:00-05:30", "2026-11-24T10:30:00.000Z"],
  ["2026-11-24T10:30:00-00:00", "2026-11-24T10:30:00.000Z"],
  ["2026-11-24T00:30:00+14:00", "2026-11-23T10:30:00.000Z"], // the offset changes the day
  ["2026-01-01T00:30:00+01:00", "2025-12-31T23:30:00.000Z"], // ... and the year
  ["2024-02-29T12:00:00Z", "2024-02-29T12:00:00.000Z"], // leap day
  ["2000-02-29T00:00:00Z", "2000-02-29T00:00:00.000Z"], // divisible by 400: a leap year
  ["2026-12-31T23:59:59.999Z", "2026-12-31T23:59:59.999Z"],
  ["0099-06-01T00:00:00Z", "0099-06-01T00:00:00.000Z"], // not shifted to 1999
];

const refused: [string, RegExp][] = [
  ["2026-02-30T10:00:00Z", /2026-02 has no day 30/],
  ["2026-11-31T00:00:00Z", /2026-11 has no day 31/],
  ["2026-02-29T00:00:00Z", /2026-02 has no day 29/], // not a leap year
  ["1900-02-29T00:00:00Z", /1900-02 has no day 29/], // divisible by 100, not by 400
  ["2026-13-01T00:00:00Z", /month 13 does not exist/],
  ["2026-00-10T00:00:00Z", /month 00 does not exist/],
  ["2026-11-00T00:00:00Z", /has no day 00/],
  ["2026-11-24T24:00:00Z", /hour 24 does not exist/],
  ["2026-11-24T10:60:00Z", /minute 60 does not exist/],
  ["2026-12-31T23:59:60Z", /second 60 is not supported/],
  ["2026-11-24T10:30:00+24:00", /offset \+24:00 does not exist/],
  ["2026-11-24T10:30:00+01:60", /offset \+01:60 does not exist/],
  ["2026-11-24T10:30:00", /no time zone/],
  ["2026-11-24T10:30", /no time zone/],
  ["2026-11-24 10:30:00.5", /no time zone/],
  ["2026-11-24", /a date alone is ambiguous/],
  ["2026-11-24T10:30:00+0100", /not an RFC 3339 timestamp/],
  ["2026-11-24T10:30:00 UTC", /not an RFC 3339 timestamp/],
  ["yesterday", /not an RFC 3339 timestamp/],
  ["1732444200000", /not an RFC 3339 timestamp/],
  ["", /not an RFC 3339 timestamp/],
  ["2026-11-24T10:30:00.Z", /not an RFC 3339 timestamp/],
  ["26-11-24T10:30:00Z", /not an RFC 3339 timestamp/],
];

Deno.test("parseTimestamp accepts RFC 3339 times with a zone", () => {
  for (const [text, iso] of accepted) {
    assert.equal(new Date(parseTimestamp(text)).toISOString(), iso, text);
  }
});

Deno.test("parseTimestamp refuses impossible, zone-less and malformed times with exit 2 and an example", () => {
  for (const [text, reason] of refused) {
    assert.throws(() => parseTimestamp(text), (e: unknown) => {
      assert.ok(e instanceof WalsyncError, text);
      assert.equal(e.exitCode, ExitCode.Usage, text);
      assert.match(e.message, reason, text);
      assert.match(
        e.message,
        /^invalid --point-in-time ".*": .*; expected e\.g\. 2026-11-24T10:30:00Z/,
        text,
      );
      assert.ok(!e.message.includes("\n"), "one line");
      return true;
    });
  }
});
