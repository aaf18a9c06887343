/**
 * Parsing the times a user gives (`restore --point-in-time`): RFC 3339 timestamps with an
 * explicit zone, nothing else. `Date.parse` is not used: it rolls impossible dates over
 * (2026-02-30 becomes March 2), reads a time without a zone in the machine's zone and a date alone
 * as UTC; a backup tool must not guess which moment was meant.
 * @module
 */
import { usageError } from "./errors.ts";

/** What the error messages show as accepted forms. */
export const TIME_EXAMPLES = "2026-11-24T10:30:00Z or 2026-11-24T11:30:00.250+01:00";

const TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/** Number of days in `month` (1-12) of `year` (proleptic Gregorian calendar). */
function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/**
 * Parses a timestamp with an explicit zone into milliseconds since the epoch.
 *
 * Accepted: `YYYY-MM-DDTHH:MM[:SS[.fraction]]` followed by `Z` or `±HH:MM` (`T` and `Z` in either
 * case, or a space instead of `T`). Fractions finer than a millisecond are cut off (a time "at or
 * before" stays at or before). Refused, with the reason: a date or time that does not exist
 * (2026-02-30, 2026-11-31, 24:00, second 60), a missing zone, a date alone, anything else.
 *
 * @param option the option's name, for the message (e.g. `--point-in-time`)
 * @throws WalsyncError (usage, exit 2) naming the text, the reason and an example
 */
export function parseTimestamp(text: string, option = "--point-in-time"): number {
  const refuse = (why: string) =>
    usageError(`invalid ${option} "${text}": ${why}; expected e.g. ${TIME_EXAMPLES}`);
  const m = TIMESTAMP.exec(text.trim());
  if (!m) {
    if (/^\d{4}-\d{2}-\d{2}$/.test(text.trim())) {
      throw refuse("a date alone is ambiguous, give a time and a zone");
    }
    if (/^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(text.trim())) {
      throw refuse("no time zone: add Z (UTC) or an offset such as +01:00");
    }
    throw refuse("not an RFC 3339 timestamp");
  }
  const [year, month, day, hour, minute] = m.slice(1, 6).map(Number);
  const second = m[6] === undefined ? 0 : Number(m[6]);
  const millis = m[7] === undefined ? 0 : Number(m[7].slice(0, 3).padEnd(3, "0"));
  if (month < 1 || month > 12) throw refuse(`month ${m[2]} does not exist`);
  if (day < 1 || day > daysInMonth(year, month)) throw refuse(`${m[1]}-${m[2]} has no day ${m[3]}`);
  if (hour > 23) throw refuse(`hour ${m[4]} does not exist (00-23)`);
  if (minute > 59) throw refuse(`minute ${m[5]} does not exist (00-59)`);
  if (second > 59) throw refuse(`second ${m[6]} is not supported (00-59)`);
  let offsetMinutes = 0;
  if (m[8] === undefined) {
    const [offsetHours, offsetMins] = [Number(m[10]), Number(m[11])];
    if (offsetHours > 23 || offsetMins > 59) throw refuse(`offset ${m[9]}${m[10]}:${m[11]} does not exist`);
    offsetMinutes = (m[9] === "-" ? -1 : 1) * (offsetHours * 60 + offsetMins);
  }
  // Date.UTC maps years 0-99 to 1900-1999; setUTCFullYear does not.
  const date = new Date(Date.UTC(2000, month - 1, day, hour, minute, second, millis));
  date.setUTCFullYear(year);
  return date.getTime() - offsetMinutes * 60_000;
}
