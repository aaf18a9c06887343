/**
 * Retention end to end (issue #10): a real writer (tests/fixtures/writer.py mixed) commits random
 * transactions while `walsync watch` replicates with short snapshot intervals; `walsync prune` then
 * runs against the live store, on RGW and on file://. The oracle is the store itself before the
 * prune: every point in time inside the window must restore to the very same bytes after it (and to
 * a state the writer logged); before the window, restore exits 3 naming the oldest restorable time.
 * On RGW a prune is also killed (SIGKILL) between two multi-object deletes, and the store must still
 * verify and restore; the next prune finishes the job.
 */
import assert from "node:assert/strict";
import {
  type Backend,
  cleanup,
  filesEqual,
  freshBackend,
  listJson,
  listKeys,
  MAIN,
  mustRun,
  restore,
  s3Settings,
  sha256File,
  sleep,
  sqlite3,
  startS3Proxy,
  startWatch,
  tempDir,
  walsync,
  WRITER,
} from "./helpers.ts";

const RETENTION_S = 12;

/** Restores `name` at `t` into a fresh file; returns its SHA-256 (throws unless restore exits 0). */
async function restoreAt(backend: Backend, name: string, t: number, out: string): Promise<string> {
  const r = await restore(backend, name, out, "--force", "--point-in-time", new Date(t).toISOString());
  assert.equal(r.code, 0, `restore at ${new Date(t).toISOString()}: ${r.stderr}`);
  return await sha256File(out);
}

/** Runs `walsync prune` as a child process; `onSpawn` gets the child (to kill it). */
async function prune(
  backend: Backend,
  args: string[],
  env: Record<string, string> = {},
  onSpawn?: (child: Deno.ChildProcess) => void,
): Promise<{ code: number; signal: Deno.Signal | null; stdout: string; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, "prune", "-b", backend.url, ...args],
    env: { NO_COLOR: "1", ...backend.env, ...env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  onSpawn?.(child);
  const out = await child.output();
  const dec = new TextDecoder();
  return {
    code: out.code,
    signal: out.signal,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
  };
}

for (const label of ["s3", "file"] as const) {
  Deno.test(`prune (${label}): the window restores exactly as before, a running watch is unharmed`, async () => {
    const dir = await tempDir();
    const db = `${dir}/app.db`;
    await mustRun("python3", [WRITER, "mixed", db, "0.3", "40"]);
    const backend = await freshBackend(label);
    const watch = await startWatch(
      [db, "-b", backend.url, "--sync-interval", "300ms", "--snapshot-interval", "3s", "--retention", "0"],
      backend.env,
    );
    const writer = new Deno.Command("python3", {
      args: [WRITER, "mixed", db, "30", "40"],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    await sleep(22_000);

    // Points in time inside the window, restored before any prune; at least 4 s in the past, so that
    // every segment cut before them is uploaded already (sync interval 300 ms).
    const now = Date.now();
    const times = [0.9, 0.75, 0.6, 0.45, 0.35].map((f) => now - f * RETENTION_S * 1000);
    // Every prune below aims at the same horizon, just before the earliest of these times.
    const horizon = now - RETENTION_S * 1000;
    const retention = () => `${Date.now() - horizon}ms`;
    const before = new Map<number, string>();
    for (const t of times) before.set(t, await restoreAt(backend, "app", t, `${dir}/before.db`));

    // --dry-run: prints what it would delete and deletes nothing.
    const keysBefore = await listKeys(backend);
    const dry = await prune(backend, ["--retention", retention(), "--dry-run"]);
    assert.equal(dry.code, 0, dry.stderr);
    const wouldDelete = dry.stdout.split("\n").filter((l) => l.startsWith("would delete "));
    assert.ok(wouldDelete.length >= 4, `several objects are older than the window:\n${dry.stdout}`);
    const keysAfterDry = await listKeys(backend);
    for (const line of wouldDelete) {
      const key = line.split(" ")[2];
      assert.ok(
        keysBefore.includes(key) && keysAfterDry.includes(key),
        `${key} is still there after --dry-run`,
      );
    }

    let posts = 0;
    let deletes = 0;
    if (label === "s3") {
      // A prune killed (SIGKILL) between two multi-object deletes (one key each).
      let victim: Deno.ChildProcess | null = null;
      const proxy = startS3Proxy(s3Settings().endpoint, {
        onRequest(method) {
          if (method === "DELETE") deletes++;
          if (method !== "POST") return;
          if (++posts === 3) {
            victim?.kill("SIGKILL");
            return true;
          }
        },
      });
      try {
        const killed = await prune(
          backend,
          ["--retention", retention(), "--endpoint", proxy.endpoint],
          { WALSYNC_PRUNE_BATCH: "1" },
          (child) => (victim = child),
        );
        assert.equal(killed.signal, "SIGKILL", `the prune must have been killed: ${killed.stderr}`);
      } finally {
        proxy.close();
      }
      assert.ok(posts >= 3 && deletes === 0, `multi-object deletes only (POST ${posts}, DELETE ${deletes})`);
      const half = await walsync(["verify", "app", "-b", backend.url], { env: backend.env });
      assert.equal(half.code, 0, `verify after a killed prune: ${half.stdout}${half.stderr}`);
      for (const t of times) {
        assert.equal(
          await restoreAt(backend, "app", t, `${dir}/half.db`),
          before.get(t),
          "after a killed prune",
        );
      }
    }

    const pruned = await prune(backend, ["--retention", retention(), "--json"]);
    assert.equal(pruned.code, 0, pruned.stderr);
    const [result] = JSON.parse(pruned.stdout);
    console.log(
      `${label}: dry run listed ${wouldDelete.length}; prune: ${JSON.stringify(result)}; POST ${posts}`,
    );
    assert.equal(result.name, "app");
    const keysAfter = await listKeys(backend);
    assert.ok(result.deletedObjects > 0 || label === "s3", JSON.stringify(result));
    for (const line of wouldDelete) {
      assert.ok(!keysAfter.includes(line.split(" ")[2]), `${line}: still there`);
    }
    const restorableFrom = Date.parse(result.restorableFrom);
    assert.ok(restorableFrom <= Date.parse(result.horizon), JSON.stringify(result));

    // Inside the window: exactly the bytes of before (each a state the writer committed, checked below).
    const states = new Map<number, number>();
    for (const t of times) {
      const out = `${dir}/after.db`;
      assert.equal(await restoreAt(backend, "app", t, out), before.get(t), `at ${new Date(t).toISOString()}`);
      const verdict = (await mustRun("python3", [WRITER, "check", out])).trim();
      assert.match(verdict, /^ok \d+$/, `at ${new Date(t).toISOString()}`);
      states.set(t, Number(verdict.split(" ")[1]));
    }
    // Before the window: exit 3, naming the oldest restorable time.
    const early = await restore(
      backend,
      "app",
      `${dir}/early.db`,
      "--point-in-time",
      new Date(restorableFrom - 1000).toISOString(),
    );
    assert.equal(early.code, 3, early.stderr);
    assert.match(early.stderr, new RegExp(`earliest restorable time: ${result.restorableFrom}`));
    const listed = (await listJson(backend)).find((d) => d.name === "app")!;
    assert.equal(listed.restorableFrom, result.restorableFrom);

    // The watcher went on unharmed: its latest state restores exactly.
    const written = await writer.output();
    assert.equal(written.code, 0, new TextDecoder().decode(written.stderr));
    // The writer prints "K T" after each commit: state K was committed at T (read after COMMIT).
    const committedAt = new Map(
      new TextDecoder().decode(written.stdout).trim().split("\n").map((l) =>
        l.split(" ").map(Number) as [number, number]
      ),
    );
    for (const [t, k] of states) {
      const at = committedAt.get(k);
      assert.ok(
        at !== undefined && at <= t + 100,
        `state ${k} restored for ${new Date(t).toISOString()} was committed then`,
      );
    }
    await sleep(2000);
    const stopped = await watch.stop("SIGINT");
    assert.equal(stopped.code, 0, stopped.stderr);
    await sqlite3(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    const latest = await restore(backend, "app", `${dir}/latest.db`);
    assert.equal(latest.code, 0, latest.stderr);
    assert.ok(await filesEqual(`${dir}/latest.db`, db), "the latest restore equals the source");
    const verified = await walsync(["verify", "-b", backend.url], { env: backend.env });
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    await cleanup(backend, dir);
  });
}
