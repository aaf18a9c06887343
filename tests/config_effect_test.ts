/**
 * The config file's retention and codec keys take effect (issue #12, docs/design.md §12): a running
 * watch prunes by `retention` every `retention-check-interval`, a database's own `retention` wins
 * over the global one, `--retention` wins over the file; `compression`, `compression-level` and
 * `encryption-key-file` decide how objects are stored, and `--compression`, `--compression-level`
 * and WALSYNC_ENCRYPTION_KEY win over them; a bad key file is an error naming the config file, line
 * and key (exit 2, nothing uploaded, the key never echoed).
 */
import assert from "node:assert/strict";
import {
  type Backend,
  cleanup,
  freshBackend,
  keyTime,
  listKeys,
  listObjects,
  mustRun,
  objectMetadata,
  restore,
  restoredState,
  sleep,
  startWatch,
  tempDir,
  walsync,
  WRITER,
  writer,
} from "./helpers.ts";

/** The time of the oldest snapshot or segment of `name`. */
async function oldest(backend: Backend, name: string): Promise<number> {
  const keys = (await listObjects(backend)).map((o) => o.key).filter((k) =>
    k.startsWith(`${name}/`) && /\/(snapshots|wal)\//.test(k)
  );
  assert.ok(keys.length > 0, `${name} has objects`);
  return Math.min(...keys.map(keyTime));
}

/** Watches with config `w.yml` in `dir` (and `flags`) while both databases are written for 6 s. */
async function watchWhileWriting(dir: string, flags: string[]): Promise<{ t0: number; stderr: string }> {
  const t0 = Date.now();
  const w = await startWatch(["-c", `${dir}/w.yml`, ...flags], {});
  await mustRun("python3", [WRITER, "many", "6", `${dir}/pruned.db`, `${dir}/kept.db`]);
  await sleep(1500);
  const { code, stderr } = await w.stop("SIGINT");
  assert.equal(code, 0, stderr);
  return { t0, stderr };
}

Deno.test("config: retention from the file prunes in the background; dbs[].retention wins; --retention wins", async () => {
  const dir = await tempDir();
  for (const name of ["pruned", "kept"]) await writer("fill", `${dir}/${name}.db`, "5");
  const backend = await freshBackend("file");
  const config = (url: string) =>
    `url: ${url}\nsync-interval: 200ms\nsnapshot-interval: 1s\nretention: 3s\nretention-check-interval: 1s\n` +
    `dbs:\n  - path: pruned.db\n  - path: kept.db\n    retention: forever\n`;
  await Deno.writeTextFile(`${dir}/w.yml`, config(backend.url));
  const run = await watchWhileWriting(dir, []);
  assert.match(run.stderr, /pruned: retention deleted [1-9]\d* object\(s\)/, "the file's retention prunes");
  assert.doesNotMatch(run.stderr, /kept: retention deleted/, "dbs[].retention: forever keeps everything");
  assert.ok(await oldest(backend, "pruned") > run.t0 + 2000, "history older than the 3 s window is gone");
  assert.ok(await oldest(backend, "kept") < run.t0 + 2000, "kept.db still has its first snapshot");
  assert.match(await restoredState(backend, "pruned", `${dir}/pruned-restored.db`), /^ok \d+$/);

  // --retention on the command line wins over the file's global retention.
  const other = await freshBackend("file");
  await Deno.writeTextFile(`${dir}/w.yml`, config(other.url));
  const flagged = await watchWhileWriting(dir, ["--retention", "forever"]);
  assert.doesNotMatch(flagged.stderr, /retention deleted/);
  assert.ok(await oldest(other, "pruned") < flagged.t0 + 2000, "nothing pruned with --retention forever");

  // A per-database retention that is not a duration: exit 2 naming file, line and key.
  await Deno.writeTextFile(
    `${dir}/w.yml`,
    `url: ${other.url}\ndbs:\n  - path: kept.db\n    retention: 1 week\n`,
  );
  const bad = await walsync(["watch", "-c", `${dir}/w.yml`]);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /w\.yml:4: dbs\[0\]\.retention: expected a duration .*got "1 week"/);
  await cleanup(dir, backend, other);
});

Deno.test("config: compression, compression-level and encryption-key-file from the file; flags and WALSYNC_ENCRYPTION_KEY win; bad key files", async () => {
  const dir = await tempDir();
  const db = `${dir}/app.db`;
  await writer("fill", db, "300");
  const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
  await Deno.writeTextFile(`${dir}/walsync.key`, key + "\n", { mode: 0o600 });
  /** Watches once with `yaml` (plus `flags`) into a fresh store; returns it and its snapshot's metadata. */
  const watchOnce = async (yaml: string, flags: string[] = [], env: Record<string, string> = {}) => {
    const backend = await freshBackend("file");
    await Deno.writeTextFile(`${dir}/w.yml`, `url: ${backend.url}\n${yaml}dbs:\n  - path: app.db\n`);
    const w = await startWatch(["-c", `${dir}/w.yml`, ...flags], env);
    const { code, stderr } = await w.stop("SIGINT");
    assert.equal(code, 0, stderr);
    assert.ok(!stderr.includes(key), "the key is never logged");
    const snapshot = (await listKeys(backend)).find((k) =>
      k.startsWith("app/snapshots/") && !k.endsWith(".json")
    );
    assert.ok(snapshot, `a snapshot was stored:\n${stderr}`);
    return { backend, meta: await objectMetadata(backend, snapshot) };
  };

  const plain = await watchOnce("compression: none\n");
  assert.deepEqual([plain.meta.compression, plain.meta.encryption], ["none", "none"]);
  const flag = await watchOnce("compression: none\n", ["--compression", "zstd"]);
  assert.equal(flag.meta.compression, "zstd", "--compression wins over the file");
  assert.ok(Number(flag.meta["stored-length"]) < Number(flag.meta["content-length"]), "really compressed");

  // compression-level: 19 stores fewer bytes than 1; --compression-level wins over the file.
  const fastest = await watchOnce("compression-level: 1\n");
  const smallest = await watchOnce("compression-level: 1\n", ["--compression-level", "19"]);
  const stored = (r: { meta: Record<string, string> }) => Number(r.meta["stored-length"]);
  assert.equal(fastest.meta["content-length"], smallest.meta["content-length"]);
  assert.ok(stored(smallest) < stored(fastest), `level 19 ${stored(smallest)} < level 1 ${stored(fastest)}`);
  assert.equal(await restoredState(smallest.backend, "app", `${dir}/l19.db`), "ok 300");
  const badLevel = await walsync(["watch", "-c", `${dir}/w.yml`, "--compression-level", "0"]);
  assert.equal(badLevel.code, 2, badLevel.stderr);
  assert.match(badLevel.stderr, /invalid --compression-level "0": expected a whole number from 1/);

  const sealed = await watchOnce("encryption-key-file: walsync.key\n");
  assert.deepEqual([sealed.meta.compression, sealed.meta.encryption], ["zstd", "aes-256-gcm"]);
  const without = await restore(sealed.backend, "app", `${dir}/nokey.db`);
  assert.equal(without.code, 2, "the objects cannot be read without the key");
  const state = await restoredState(
    sealed.backend,
    "app",
    `${dir}/r.db`,
    "--encryption-key-file",
    `${dir}/walsync.key`,
  );
  assert.equal(state, "ok 300");
  // WALSYNC_ENCRYPTION_KEY stands for --encryption-key-file and wins over the file's key.
  const envKey = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
  const overridden = await watchOnce("encryption-key-file: walsync.key\n", [], {
    WALSYNC_ENCRYPTION_KEY: envKey,
  });
  const withFileKey = await restore(
    overridden.backend,
    "app",
    `${dir}/filekey.db`,
    "--encryption-key-file",
    `${dir}/walsync.key`,
  );
  assert.equal(withFileKey.code, 4, "stored with the variable's key, not the file's");
  await Deno.writeTextFile(`${dir}/env.key`, envKey, { mode: 0o600 });
  const withEnvKey = await restoredState(
    overridden.backend,
    "app",
    `${dir}/envkey.db`,
    "--encryption-key-file",
    `${dir}/env.key`,
  );
  assert.equal(withEnvKey, "ok 300");

  // A missing or malformed key file: exit 2 naming the config file, line and key; nothing uploaded.
  const bare = await freshBackend("file");
  await Deno.writeTextFile(`${dir}/bad.key`, `not-a-key-${key}\n`);
  for (
    const [file, expected] of [
      ["missing.key", /w\.yml:3: encryption-key-file: cannot read encryption key file .*missing\.key/],
      ["bad.key", /w\.yml:3: encryption-key-file: encryption key file .*bad\.key: not base64/],
    ] as const
  ) {
    await Deno.writeTextFile(
      `${dir}/w.yml`,
      `url: ${bare.url}\nsync-interval: 1s\nencryption-key-file: ${file}\ndbs:\n  - path: app.db\n`,
    );
    const r = await walsync(["watch", "-c", `${dir}/w.yml`]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, expected);
    assert.ok(!r.stderr.includes(key), "the key text is never echoed");
  }
  assert.deepEqual(await listKeys(bare), [], "nothing may have been uploaded");
  await cleanup(dir, plain.backend, flag.backend, fastest.backend, smallest.backend, sealed.backend);
  await cleanup(overridden.backend, bare);
});
