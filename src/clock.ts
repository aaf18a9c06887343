/**
 * The clock that stamps stored objects (docs/design.md §4, "Object times"). It follows the system
 * clock forward but never back: after a step back (an NTP correction, `date -s`), stamps go on from
 * where they were at the pace of the monotonic clock, so objects written after the step neither sort
 * before earlier ones nor pile up on one instant until the wall clock catches up (which made a
 * point-in-time restore inside that window return an older state). A forward step is followed.
 * @module
 */

/** The stamp the monotonic clock's zero corresponds to (moved forward when the wall clock leaps ahead). */
let anchor = Date.now() - performance.now();

/** Now, in milliseconds since the epoch, as walsync stamps objects: never less than an earlier reading. */
export function stampNow(): number {
  const monotonic = anchor + performance.now();
  const wall = Date.now();
  if (wall > monotonic) {
    anchor += wall - monotonic;
    return wall;
  }
  return Math.floor(monotonic);
}
