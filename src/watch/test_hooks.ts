/**
 * Fault injection for tests: `WALSYNC_TEST_HOOK=name[,name...]` arms named points of the replica
 * engine, each of which fires once per process. Unset (always, outside tests), nothing happens.
 *
 * - `fail-repin`: starting the read transaction again after a checkpoint fails.
 * - `crash-after-checkpoint`: the process kills itself (SIGKILL) right after a checkpoint whose
 *   spooled remainder is not uploaded yet.
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

/** True (once) if hook `name` is armed; it is disarmed by firing. */
export function testHook(name: string): boolean {
  return armedHooks().delete(name);
}
