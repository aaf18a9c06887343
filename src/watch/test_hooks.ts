/**
 * Fault injection for tests: `WALSYNC_TEST_HOOK=name[,name...]` arms named points of the replica
 * engine, each of which fires once per process. Unset (always, outside tests), nothing happens.
 *
 * - `fail-repin`: starting the read transaction again after a checkpoint fails.
 * - `crash-after-checkpoint`: the process kills itself (SIGKILL) right after a checkpoint whose
 *   spooled remainder is not uploaded yet.
 * - `crash-in-build`: the process kills itself (SIGKILL) in a level-1 page-set build, its pages
 *   collected in the temporary file, nothing uploaded.
 * - `drop-fs-events` (stays armed): every file-system event is ignored, as if all were lost; only
 *   the backstop poll finds commits.
 * - `pause-before-advance`, `pause-after-advance` (stay armed): a checkpoint stops just before (or
 *   after) it moves its read transaction, creates `<db>.walsync-pause-<point>` and waits (the whole
 *   process, up to 60 s) until the test deletes that file, so that another process can commit at
 *   exactly that moment.
 *
 * `WALSYNC_TEST_CLOCK_STEP=AFTER_MS:OFFSET_MS` steps the process's wall clock (`Date.now`) by
 * OFFSET_MS (negative: back) AFTER_MS after `watch` starts, as an NTP correction would.
 * @module
 */

let armed: Set<string> | null = null;

function armedHooks(): Set<string> {
  if (armed === null) {
    let value = "";
    try {
      value = Deno.env.get("WALSYNC_TEST_HOOK") ?? "";
    } catch { /* no env permission: no hooks */ }
    armed = new Set(value.split(",").map((s) => s.trim()).filter(Boolean));
  }
  return armed;
}

/** True while hook `name` is armed, without disarming it (a standing condition, not a one-off fault). */
export function testFlag(name: string): boolean {
  return armedHooks().has(name);
}

/** True (once) if hook `name` is armed; it is disarmed by firing. */
export function testHook(name: string): boolean {
  return armedHooks().delete(name);
}

/** Arms the clock step of `WALSYNC_TEST_CLOCK_STEP`, if set (see the module documentation). */
export function armClockStep(): void {
  let value: string | undefined;
  try {
    value = Deno.env.get("WALSYNC_TEST_CLOCK_STEP");
  } catch { /* no env permission: no hooks */ }
  const match = /^(\d+):(-?\d+)$/.exec(value ?? "");
  if (!match) return;
  const [afterMs, offsetMs] = [Number(match[1]), Number(match[2])];
  const timer = setTimeout(() => {
    const systemNow = Date.now;
    Date.now = () => systemNow() + offsetMs;
  }, afterMs);
  Deno.unrefTimer(timer);
}

/**
 * If `pause-<point>` is armed: creates `<dbPath>.walsync-pause-<point>` and blocks the process until
 * that file is deleted (at most 60 s). See the module documentation.
 */
export function testPause(point: string, dbPath: string): void {
  if (!testFlag(`pause-${point}`)) return;
  const marker = `${dbPath}.walsync-pause-${point}`;
  Deno.writeTextFileSync(marker, `${Deno.pid}\n`);
  const tick = new Int32Array(new SharedArrayBuffer(4));
  for (let waited = 0; waited < 60_000; waited += 5) {
    try {
      Deno.statSync(marker);
    } catch {
      return;
    }
    Atomics.wait(tick, 0, 0, 5);
  }
}
