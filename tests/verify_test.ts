/**
 * `walsync verify` (issue #4) on intact backups, on RGW and file://: exit 0 and the restorable
 * ranges; unknown objects are warnings; NAME arguments; a missing generation; nothing is written to
 * the store; memory stays flat however large the objects are. (Damage of each kind of object is in
 * damage_test.ts.)
 */
import assert from "node:assert/strict";
import { forgeSnapshot } from "./fixtures/forge.ts";
import {
  damageObject,
  deleteObject,
  filesEqual,
  freshBackend,
  keyTime,
  listKeys,
  MAIN,
  makeWatchedBackup,
  putForeignObject,
  sh,
  sqlite3,
  startWatch,
  storeFingerprint,
  tempDir,
  walsync,
  writer,
} from "./helpers.ts";

const iso = (ms: number) => new Date(ms).toISOString();

/** Runs `walsync ARGS` under /usr/bin/time; returns the exit code and the peak RSS in KB. */
async function peakRss(args: string[], env: Record<string, string>): Promise<{ code: number; kb: number }> {
  const r = await sh("/usr/bin/time", [
    "-f",
    "peak %M",
    Deno.execPath(),
    "run",
    "-A",
    "--quiet",
    MAIN,
    ...args,
  ], {
    env: { NO_COLOR: "1", ...env },
  });
  const kb = Number(/peak (\d+)\s*$/.exec(r.stderr)?.[1]);
  assert.ok(kb > 0, r.stderr);
  return { code: r.code, kb };
}

for (const label of ["s3", "file"] as const) {
  Deno.test(`[${label}] verify: an intact backup from watch and snapshot exits 0 and reports what is restorable`, async () => {
    const f = await makeWatchedBackup(label);
    const env = f.backend.env;
    const before = await storeFingerprint(f.backend);

    const r = await walsync(["verify", "-b", f.backend.url, "--json"], { env });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.ok, true);
    assert.equal(report.mode, "full");
    assert.equal(report.url, f.backend.url);
    assert.deepEqual(report.warnings, []);
    assert.equal(report.databases.length, 1);
    const [db] = report.databases;
    assert.equal(db.name, "app");
    assert.equal(db.ok, true);
    assert.deepEqual(db.damaged, []);
    assert.deepEqual(db.warnings, []);
    assert.equal(db.objects, f.objects.length + 2, "generation 1, the one-shot snapshot and state.json");
    const last = keyTime(f.objects.at(-1)!);
    assert.equal(db.restorableFrom, iso(keyTime(f.snapshots[0])));
    assert.equal(db.restorableTo, iso(last));
    assert.deepEqual(db.generations.map((g: { generation: number }) => g.generation), [1, 2]);
    const [g1, g2] = db.generations;
    assert.deepEqual(
      { ...g1, bytes: 0 },
      {
        generation: 1,
        snapshots: f.snapshots.length,
        segments: f.segments.length,
        pageSets: 0,
        bytes: 0,
        ok: true,
        restorable: [{ from: iso(keyTime(f.snapshots[0])), to: iso(last) }],
        unreachable: 0,
      },
    );
    assert.deepEqual(g2.restorable, [{ from: iso(keyTime(f.oneShot)), to: iso(keyTime(f.oneShot)) }]);

    const text = await walsync(["verify", "-b", f.backend.url], { env });
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^app: OK \(2 generation\(s\)/m);
    assert.ok(
      text.stdout.includes(`generation 00000001: restorable ${iso(keyTime(f.snapshots[0]))} .. ${iso(last)}`),
      text.stdout,
    );
    assert.match(text.stdout, /1 database\(s\): 1 OK, 0 damaged/);

    const quick = await walsync(["verify", "-b", f.backend.url, "--quick", "--json"], { env });
    assert.equal(quick.code, 0, quick.stderr);
    const quickReport = JSON.parse(quick.stdout);
    assert.equal(quickReport.mode, "quick");
    assert.deepEqual(quickReport.databases[0].generations, db.generations);

    assert.equal(await storeFingerprint(f.backend), before, "verify must not write to the store");

    // What verify called restorable restores: the latest state equals the source.
    await sqlite3(f.db, "PRAGMA wal_checkpoint(TRUNCATE)");
    const out = `${f.dir}/latest.db`;
    const restore = await walsync(["restore", "app", "-o", out, "-b", f.backend.url], { env });
    assert.equal(restore.code, 0, restore.stderr);
    assert.ok(await filesEqual(out, f.db), "the latest restore equals the source");

    // Keys walsync does not know (written by a newer version, a stray file): warnings only.
    await putForeignObject(f.backend, "app/extra.json", '{"holder":"someone"}');
    await putForeignObject(f.backend, "README.txt", "not a backup");
    const withUnknown = await walsync(["verify", "-b", f.backend.url, "--json"], { env });
    assert.equal(withUnknown.code, 0, withUnknown.stdout + withUnknown.stderr);
    const unknown = JSON.parse(withUnknown.stdout);
    assert.equal(unknown.ok, true);
    assert.deepEqual(unknown.databases[0].warnings, [{
      key: "app/extra.json",
      message: "unknown object, not checked",
    }]);
    assert.deepEqual(unknown.warnings, [{ key: "README.txt", message: "unknown object, not checked" }]);
    const unknownText = await walsync(["verify", "-b", f.backend.url], { env });
    assert.match(unknownText.stdout, /WARNING app\/extra\.json: unknown object/);
  });

  Deno.test(`[${label}] verify: NAME arguments, snapshot-only backups, a missing generation`, async () => {
    const backend = await freshBackend(label);
    const env = backend.env;
    const dir = await tempDir();
    for (const name of ["one", "two"]) await writer("fill", `${dir}/${name}.db`, "100");
    const keys: string[] = [];
    for (const name of ["one", "one", "one", "two"]) {
      await writer("fill", `${dir}/${name}.db`, "10");
      const r = await walsync(["snapshot", `${dir}/${name}.db`, "-b", backend.url, "--json"], { env });
      assert.equal(r.code, 0, r.stderr);
      keys.push(JSON.parse(r.stdout).key);
    }
    // Snapshot-only backups have no state.json, and need none.
    assert.ok(!(await listKeys(backend)).some((k) => k.endsWith("state.json")));
    assert.equal((await walsync(["verify", "-b", backend.url], { env })).code, 0);

    await deleteObject(backend, keys[1]); // generation 2 of "one": generations 1 and 3 remain
    const all = await walsync(["verify", "-b", backend.url, "--json"], { env });
    assert.equal(all.code, 4, all.stderr);
    const report = JSON.parse(all.stdout);
    const [one, two] = report.databases;
    assert.equal(two.ok, true);
    assert.equal(one.damaged.length, 1, JSON.stringify(one.damaged));
    assert.deepEqual(
      { ...one.damaged[0], message: "" },
      {
        object: "one generation 00000002",
        key: null,
        kind: "generation",
        generation: 2,
        index: null,
        reason: "missing",
        message: "",
      },
    );
    assert.equal((await walsync(["verify", "two", "-b", backend.url], { env })).code, 0);
    const named = await walsync(["verify", "one", "-b", backend.url], { env });
    assert.equal(named.code, 4);
    assert.match(named.stdout, /MISSING one generation 00000002: missing entirely/);
    assert.doesNotMatch(named.stdout, /^two/m);
    const missing = await walsync(["verify", "one", "nothing", "-b", backend.url], { env });
    assert.equal(missing.code, 3, missing.stderr);
    assert.match(missing.stderr, /no backup of "nothing"/);
    assert.equal((await walsync(["verify", "../x", "-b", backend.url], { env })).code, 2);

    // restore: the latest state (generation 3) is intact; the time of generation 2 is not restorable.
    const out = await tempDir();
    const latest = await walsync(["restore", "one", "-o", `${out}/latest.db`, "-b", backend.url], { env });
    assert.equal(latest.code, 0, latest.stderr);
    const at = iso(keyTime(keys[1]));
    const gone = await walsync([
      "restore",
      "one",
      "-o",
      `${out}/gone.db`,
      "-b",
      backend.url,
      "--point-in-time",
      at,
    ], {
      env,
    });
    assert.equal(gone.code, 4, gone.stderr);
    assert.match(gone.stderr, /ERROR .*one generation 00000002: missing entirely/);
  });

  Deno.test(`[${label}] verify streams: memory does not grow with the size of the objects`, async () => {
    const backend = await freshBackend(label);
    const env = backend.env;
    const dir = await tempDir();
    try {
      await writer("fill", `${dir}/small.db`, "10");
      await writer("fill", `${dir}/big.db`, "100000"); // about 100 MB
      for (const name of ["small", "big"]) {
        // Stored as is: the decoded path (zstd, encryption) has its own test in codec_cli_test.ts.
        const args = ["snapshot", `${dir}/${name}.db`, "-b", backend.url, "--compression", "none"];
        const r = await walsync(args, { env });
        assert.equal(r.code, 0, r.stderr);
      }
      const small = await peakRss(["verify", "small", "-b", backend.url], env);
      const big = await peakRss(["verify", "big", "-b", backend.url], env);
      assert.equal(small.code, 0);
      assert.equal(big.code, 0);
      console.log(`verify peak RSS: small ${small.kb} KB, 100 MB snapshot ${big.kb} KB`);
      assert.ok(big.kb - small.kb < 40_000, `verify of a 100 MB object used ${big.kb - small.kb} KB more`);
    } finally {
      // Large files: do not leave them behind.
      await Deno.remove(dir, { recursive: true });
      if (backend.dir) await Deno.remove(backend.dir, { recursive: true }).catch(() => {});
    }
  });
}

for (const label of ["s3", "file"] as const) {
  Deno.test(`[${label}] a damaged lease (flipped or truncated while watch holds it) is reported by verify, by name`, async () => {
    const backend = await freshBackend(label);
    const dir = await tempDir();
    const db = `${dir}/leased.db`;
    await writer("fill", db, "50");
    const watch = await startWatch([db, "-b", backend.url], backend.env);
    try {
      const intact = await walsync(["verify", "-b", backend.url, "--json"], { env: backend.env });
      assert.equal(intact.code, 0, intact.stderr);
      for (const how of ["flip", "truncate"] as const) {
        await damageObject(backend, "leased/lease.json", how);
        const r = await walsync(["verify", "-b", backend.url, "--json"], { env: backend.env });
        assert.equal(r.code, 4, r.stderr);
        const report = JSON.parse(r.stdout);
        const damaged = report.databases.flatMap((d: { damaged: { key: string }[] }) => d.damaged);
        assert.deepEqual(damaged.map((d: { key: string }) => d.key), ["leased/lease.json"]);
      }
    } finally {
      await watch.stop("SIGINT");
    }
  });
}

for (const label of ["s3", "file"] as const) {
  Deno.test(`[${label}] verify: a database with nothing restorable (only lease.json, after a crash) is not OK`, async () => {
    const backend = await freshBackend(label);
    const dir = await tempDir();
    const db = `${dir}/crashed.db`;
    await writer("fill", db, "20");
    const watch = await startWatch([db, "-b", backend.url], backend.env);
    await watch.stop("SIGKILL"); // the lease stays, as after a crash
    const keys = (await listKeys(backend)).filter((k) => !k.endsWith(".meta.json"));
    for (const key of keys) if (key !== "crashed/lease.json") await deleteObject(backend, key);
    assert.deepEqual((await listKeys(backend)).filter((k) => !k.endsWith(".meta.json")), [
      "crashed/lease.json",
    ]);
    const all = await walsync(["verify", "-b", backend.url, "--json"], { env: backend.env });
    assert.equal(all.code, 4, all.stdout + all.stderr);
    const [report] = JSON.parse(all.stdout).databases;
    assert.equal(report.ok, false);
    assert.match(report.damaged[0].message, /nothing can be restored/);
    const named = await walsync(["verify", "crashed", "-b", backend.url], { env: backend.env });
    assert.equal(named.code, 3, named.stderr);
    assert.match(named.stderr, /nothing restorable of "crashed"/);
    assert.doesNotMatch(named.stderr, /\n\s+at /, "no stack trace");
  });
}

for (const label of ["s3", "file"] as const) {
  Deno.test(`[${label}] verify: a forged mid-generation snapshot (valid SQLite, same size, matching sha256) is damage`, async () => {
    const f = await makeWatchedBackup(label);
    const target = f.snapshots[1]; // taken by watch in the middle of generation 1
    await forgeSnapshot(f.backend, target, f.dir);

    const quick = await walsync(["verify", "-b", f.backend.url, "--quick"], { env: f.backend.env });
    assert.equal(quick.code, 0, "metadata alone cannot tell");
    const full = await walsync(["verify", "-b", f.backend.url, "--json"], { env: f.backend.env });
    assert.equal(full.code, 4, full.stdout + full.stderr);
    const damaged = JSON.parse(full.stdout).databases.flatMap((d: { damaged: unknown[] }) => d.damaged);
    assert.deepEqual(damaged.map((d: { key: string }) => d.key), [target]);
    assert.match(damaged[0].message, /not the database at its position/);
  });
}
