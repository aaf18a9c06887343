/**
 * The `watch` config file (issue #12): every documented key, `${VAR}` expansion, each kind of
 * error naming file, line and key (exit 2, nothing uploaded), flags over the file, and a glob that
 * picks up a database created while watch runs (restored byte-exact, on RGW and file://).
 */
import assert from "node:assert/strict";
import { parseConfig } from "../src/config/load.ts";
import { resolveWatchSettings } from "../src/config/watch_settings.ts";
import { expandTargets } from "../src/config/globs.ts";
import {
  cleanup,
  filesEqual,
  freshBackend,
  listKeys,
  listObjects,
  restoredState,
  sh,
  sleep,
  spawnWatch,
  sqlite3,
  startWatch,
  tempDir,
  walsync,
  writer,
} from "./helpers.ts";

const noEnv = (name: string) => ({ HOME: "/home/x", S3_ENDPOINT: "http://127.0.0.1:7480", EMPTY: "" }[name]);

Deno.test("config: every documented key is read, durations in every unit, ${VAR} expanded", () => {
  const config = parseConfig(
    `# comment
url: s3://backups/prod
endpoint: \${S3_ENDPOINT}
region: \${REGION:-eu-west-1}
profile: prod
sync-interval: 500ms
snapshot-interval: 1h
checkpoint-frames: 2000
lease: 5m
scan-interval: 15s
metrics-addr: 0.0.0.0:9090
log-format: json
log-level: debug
retention: 7d
retention-check-interval: 30m
compression: none
compression-level: 19
encryption-key-file: keys/walsync.key
fine-history: 2h
compaction-levels: 1m,10m,2h
compaction-interval: 45s
dbs:
  - path: /srv/app.db
    retention: forever
  - path: /srv/tenants/*.db
    snapshot-interval: 7d
    retention: 0
  - path: billing/main.db
    name: billing
    checkpoint-frames: 500
    retention: 90d
  - path: \${HOME}/cost$$.db
`,
    "/etc/walsync.yml",
    noEnv,
  );
  assert.equal(config.url, "s3://backups/prod");
  assert.equal(config.endpoint, "http://127.0.0.1:7480");
  assert.equal(config.region, "eu-west-1");
  assert.equal(config.profile, "prod");
  assert.equal(config.syncIntervalMs, 500);
  assert.equal(config.snapshotIntervalMs, 3_600_000);
  assert.equal(config.checkpointFrames, 2000);
  assert.equal(config.leaseMs, 300_000);
  assert.equal(config.scanIntervalMs, 15_000);
  assert.equal(config.metricsAddr, "0.0.0.0:9090");
  assert.equal(config.logFormat, "json");
  assert.equal(config.logLevel, "debug");
  assert.equal(config.retentionMs, 7 * 86_400_000);
  assert.equal(config.retentionCheckIntervalMs, 1_800_000);
  assert.equal(config.compression, "none");
  assert.equal(config.compressionLevel, 19);
  assert.equal(config.encryptionKeyFile, "/etc/keys/walsync.key", "relative to the config file");
  assert.equal(config.encryptionKeyAt, "/etc/walsync.yml:18: encryption-key-file");
  assert.equal(config.fineHistoryMs, 7_200_000);
  assert.deepEqual(config.compactionLevelsMs, [60_000, 600_000, 7_200_000]);
  assert.equal(config.compactionIntervalMs, 45_000);
  assert.equal(
    parseConfig("url: file:///b\ncompaction-levels: off\ndbs: []\n", "w.yml").compactionLevelsMs,
    null,
  );
  assert.deepEqual(
    config.dbs.map((
      d,
    ) => [d.path, d.name, d.glob, d.snapshotIntervalMs, d.checkpointFrames, d.retentionMs, d.where]),
    [
      ["/srv/app.db", undefined, false, undefined, undefined, null, "/etc/walsync.yml:23"],
      ["/srv/tenants/*.db", undefined, true, 604_800_000, undefined, null, "/etc/walsync.yml:25"],
      ["/etc/billing/main.db", "billing", false, undefined, 500, 90 * 86_400_000, "/etc/walsync.yml:28"],
      ["/home/x/cost$.db", undefined, false, undefined, undefined, undefined, "/etc/walsync.yml:32"],
    ],
  );
  // Absent retention stays undefined (the flag or the default decides); a bare number is seconds.
  const bare = parseConfig("url: file:///b\nretention: 3600\ndbs:\n  - path: /a.db\n", "w.yml");
  assert.deepEqual([bare.retentionMs, bare.dbs[0].retentionMs, bare.compression], [
    3_600_000,
    undefined,
    undefined,
  ]);
  // A bare number is seconds; a numeric name is a name; JSON is YAML too.
  assert.equal(
    parseConfig("url: file:///b\ndbs:\n  - path: /a.db\n    name: 2024\n", "w.yml").dbs[0].name,
    "2024",
  );
  const json = parseConfig(
    `{"url": "file:///b", "sync-interval": 2, "dbs": [{"path": "/a.db"}]}`,
    "w.json",
    noEnv,
  );
  assert.equal(json.syncIntervalMs, 2000);
});

Deno.test("config: each kind of error names the file, the line and the key", () => {
  const cases: [string, RegExp][] = [
    [
      "url: file:///b\nsync-intervall: 1s\ndbs: []\n",
      /^w\.yml:2: sync-intervall: unknown key \(known: url, /,
    ],
    [
      "url: file:///b\ndbs:\n  - path: /a.db\n    nmae: x\n",
      /^w\.yml:4: dbs\[0\]\.nmae: unknown key \(known: path, name/,
    ],
    [
      "url: file:///b\nsync-interval: fast\ndbs: []\n",
      /^w\.yml:2: sync-interval: expected a duration .*got "fast"/,
    ],
    [
      "url: file:///b\ncheckpoint-frames: 1.5\ndbs: []\n",
      /^w\.yml:2: checkpoint-frames: expected a positive whole/,
    ],
    ["url: [1, 2]\ndbs: []\n", /^w\.yml:1: url: expected a backup URL/],
    ["url: http://x\ndbs: []\n", /^w\.yml:1: url: unsupported backup URL "http:\/\/x"/],
    [
      "url: file:///b\nlog-format: xml\ndbs: []\n",
      /^w\.yml:2: log-format: expected one of human, json, got "xml"/,
    ],
    ["url: file:///b\nmetrics-addr: nowhere\ndbs: []\n", /^w\.yml:2: metrics-addr: expected HOST:PORT/],
    [
      "url: file:///b\nendpoint: ${NOPE_UNSET}\ndbs: []\n",
      /^w\.yml:2: endpoint: environment variable NOPE_UNSET is not set/,
    ],
    [
      "url: file:///b\ndbs:\n  - path: /a.db\n    name: x\n  - path: /b.db\n    name: x\n",
      /^w\.yml:5: name: "x" is already used by \/a\.db \(line 3\)/,
    ],
    [
      "url: file:///b\ndbs:\n  - path: /a.db\n  - path: /a.db\n",
      /^w\.yml:4: path: \/a\.db is already listed at line 3/,
    ],
    ["url: file:///b\ndbs:\n  - name: x\n", /^w\.yml:3: dbs\[0\]: missing path/],
    [
      "url: file:///b\ndbs:\n  - path: /t/*.db\n    name: t\n",
      /^w\.yml:4: dbs\[0\]\.name: a name cannot be given to a glob/,
    ],
    [
      "url: file:///b\ndbs:\n  - path: /a.db\n    name: -bad\n",
      /^w\.yml:4: dbs\[0\]\.name: invalid database name "-bad"/,
    ],
    ["url: file:///b\nurl: file:///c\ndbs: []\n", /^w\.yml:2: url: duplicate key \(first given at line 1\)/],
    ["url: file:///b\ndbs: [\n", /^w\.yml:\d+: invalid YAML/],
    ["url: file:///b\n", /^w\.yml: no databases: add a "dbs:" list/],
    ["- a\n", /^w\.yml:1: expected a map of settings/],
    ["", /^w\.yml: the config file is empty/],
    ["url: file:///b\ndbs: /a.db\n", /^w\.yml:2: dbs: expected a list of databases/],
    ["url: file:///b\nregion: true\ndbs: []\n", /^w\.yml:2: region: expected a string, got true/],
    [
      "url: file:///b\nretention: soon\ndbs: []\n",
      /^w\.yml:2: retention: expected a duration \(1h, 7d\.\.\.\), or 0 or forever .*got "soon"/,
    ],
    [
      "url: file:///b\ndbs:\n  - path: /a.db\n    retention: [7d]\n",
      /^w\.yml:4: dbs\[0\]\.retention: expected a duration/,
    ],
    [
      "url: file:///b\nretention-check-interval: forever\ndbs: []\n",
      /^w\.yml:2: retention-check-interval: expected a duration .*got "forever"/,
    ],
    [
      "url: file:///b\ncompression: lz4\ndbs: []\n",
      /^w\.yml:2: compression: expected one of zstd, none, got "lz4"/,
    ],
    [
      "url: file:///b\ncompression: 9\ndbs: []\n",
      /^w\.yml:2: compression: expected one of zstd, none, got 9/,
    ],
    [
      "url: file:///b\ncompression-level: 20\ndbs: []\n",
      /^w\.yml:2: compression-level: expected a zstd level from 1 \(fastest\) to 19 \(smallest\), got "20"/,
    ],
    [
      "url: file:///b\ncompaction-levels: 5m,30s\ndbs: []\n",
      /^w\.yml:2: compaction-levels: expected increasing durations, each a multiple of the previous .*got "5m,30s"/,
    ],
    [
      "url: file:///b\nfine-history: later\ndbs: []\n",
      /^w\.yml:2: fine-history: expected a duration .*got "later"/,
    ],
    [
      "url: file:///b\nencryption-key-file: {}\ndbs: []\n",
      /^w\.yml:2: encryption-key-file: expected a file path/,
    ],
    [
      "url: file:///b\ndbs:\n  - path: /a.db\n    compression: none\n",
      /^w\.yml:4: dbs\[0\]\.compression: unknown key \(known: path, name, snapshot-interval, checkpoint-frames, retention\)/,
    ],
  ];
  for (const [text, expected] of cases) {
    assert.throws(() => parseConfig(text, "w.yml", noEnv), (e: Error & { exitCode?: number }) => {
      assert.match(e.message, expected, `for:\n${text}`);
      assert.equal(e.exitCode, 2);
      return true;
    });
  }
});

Deno.test("config: glob names that collide are refused naming both config lines", async () => {
  const dir = await tempDir();
  await Deno.mkdir(`${dir}/a`);
  await Deno.mkdir(`${dir}/b`);
  for (const d of ["a", "b"]) await writer("fill", `${dir}/${d}/app.db`, "1");
  const config = parseConfig(
    `url: file:///x\ndbs:\n  - path: ${dir}/a/*.db\n  - path: ${dir}/*/app.db\n`,
    "w.yml",
  );
  await assert.rejects(
    () => expandTargets(config),
    /w\.yml:4: path: .*\/b\/app\.db and .*\/a\/app\.db \(w\.yml:3\) would both be stored as "app"/,
  );
  // -wal/-shm companions never match a glob.
  const all = parseConfig(`url: file:///x\ndbs:\n  - path: ${dir}/a/*\n`, "w.yml");
  assert.deepEqual((await expandTargets(all)).map((t) => t.name), ["app"]);
  await cleanup(dir);
});

Deno.test("config via the CLI: errors exit 2 before anything is uploaded; unreadable paths; WALSYNC_CONFIG", async () => {
  const backend = await freshBackend("s3");
  const dir = await tempDir();
  await writer("fill", `${dir}/app.db`, "10");
  await Deno.writeTextFile(`${dir}/secret.db`, "x");
  await Deno.chmod(`${dir}/secret.db`, 0o000);
  const cases: [string, RegExp][] = [
    [
      `url: ${backend.url}\ndbs:\n  - path: app.db\n  - path: missing.db\n`,
      /w\.yml:4: path: cannot read .*missing\.db: no such file/,
    ],
    [
      `url: ${backend.url}\ndbs:\n  - path: app.db\n  - path: nodir/*.db\n`,
      /w\.yml:4: path: cannot read .*nodir: no such file/,
    ],
    [
      `url: ${backend.url}\ndbs:\n  - path: app.db\n    replicas: []\n`,
      /w\.yml:4: dbs\[0\]\.replicas: unknown key/,
    ],
  ];
  if (Deno.uid() !== 0) {
    cases.push([
      `url: ${backend.url}\ndbs:\n  - path: secret.db\n`,
      /w\.yml:3: path: cannot read .*permission denied/,
    ]);
  }
  for (const [text, expected] of cases) {
    await Deno.writeTextFile(`${dir}/w.yml`, text);
    const r = await walsync(["watch", "-c", `${dir}/w.yml`], { env: backend.env });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, expected);
    assert.equal(r.stderr.trim().split("\n").length, 1, `one line, no stack trace:\n${r.stderr}`);
  }
  const missing = await walsync(["watch", "-c", `${dir}/nope.yml`], { env: backend.env });
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /cannot read config file .*nope\.yml: no such file/);
  // WALSYNC_CONFIG stands for -c.
  await Deno.writeTextFile(
    `${dir}/w.yml`,
    `url: ${backend.url}\nsync-interval: never\ndbs:\n  - path: app.db\n`,
  );
  const fromEnv = await walsync(["watch"], { env: { ...backend.env, WALSYNC_CONFIG: `${dir}/w.yml` } });
  assert.equal(fromEnv.code, 2);
  assert.match(fromEnv.stderr, /w\.yml:2: sync-interval: expected a duration/);
  await Deno.writeTextFile(`${dir}/w.yml`, `url: ${backend.url}\ndbs: []\n`);
  const empty = await walsync(["watch", "-c", `${dir}/w.yml`], { env: backend.env });
  assert.equal(empty.code, 2);
  assert.match(empty.stderr, /w\.yml: dbs: the list is empty/);
  const nothing = await walsync(["watch", "-b", backend.url], { env: backend.env });
  assert.equal(nothing.code, 2);
  assert.match(nothing.stderr, /no database to watch/);
  assert.deepEqual(await listKeys(backend), [], "nothing may have been uploaded");
  await Deno.chmod(`${dir}/secret.db`, 0o644);
  await cleanup(dir, backend);
});

Deno.test("config via the CLI: flags win over the file, durations on flags", async () => {
  const backend = await freshBackend("file");
  const other = await freshBackend("file");
  const dir = await tempDir();
  await writer("fill", `${dir}/app.db`, "10");
  await writer("fill", `${dir}/cli.db`, "10");
  await Deno.writeTextFile(
    `${dir}/w.yml`,
    `url: ${other.url}\nsync-interval: 7s\nlog-format: json\ndbs:\n  - path: app.db\n`,
  );
  // The file alone: its URL, its interval, its JSON format.
  const fileOnly = await startWatch(["-c", `${dir}/w.yml`], {});
  const fileStderr = (await fileOnly.stop("SIGINT")).stderr;
  const lines = fileStderr.trim().split("\n").map((l) => JSON.parse(l));
  assert.ok(
    lines.some((l) => l.level === "info" && l.message === "watching 1 database(s); sync every 7000 ms"),
  );
  assert.ok(lines.some((l) => l.database === "app" && /^app: snapshot /.test(l.message)), fileStderr);
  assert.deepEqual([...new Set((await listKeys(other)).map((k) => k.split("/")[0]))], ["app"]);
  // log-level: warn hides the info lines.
  const third = await freshBackend("file");
  await Deno.writeTextFile(`${dir}/w.yml`, `url: ${third.url}\nlog-level: warn\ndbs:\n  - path: app.db\n`);
  const quiet = spawnWatch(["-c", `${dir}/w.yml`], {});
  // Running once its first snapshot is stored (it prints nothing to wait for).
  const deadline = Date.now() + 60_000;
  while (
    !(await listObjects(third)).some((o) => o.key.startsWith("app/snapshots/")) && Date.now() < deadline
  ) {
    await sleep(50);
  }
  await sleep(300);
  const quietStop = await quiet.stop("SIGINT");
  assert.equal(quietStop.code, 0, quietStop.stderr);
  assert.equal(quietStop.stderr, "", "log-level: warn hides info lines");
  // Flags win: -b, --sync-interval (a duration), --log-format, -v; command-line DBs replace dbs:.
  const w = await startWatch(
    [
      "-c",
      `${dir}/w.yml`,
      "-b",
      backend.url,
      "--sync-interval",
      "250ms",
      "--log-format",
      "human",
      "-v",
      `${dir}/cli.db`,
    ],
    {},
  );
  const stderr = (await w.stop("SIGINT")).stderr;
  assert.match(stderr, /^\S+Z INFO watching 1 database\(s\); sync every 250 ms$/m);
  assert.deepEqual([...new Set((await listKeys(backend)).map((k) => k.split("/")[0]))], ["cli"]);
  const bad = await walsync(["watch", `${dir}/cli.db`, "-b", backend.url, "--sync-interval", "1x"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /invalid --sync-interval "1x": expected a duration/);
  await cleanup(dir, backend, other, third);
});

for (const label of ["s3", "file"] as const) {
  Deno.test(`[${label}] config glob: a database created while watching is picked up and restores byte-exact`, async () => {
    const backend = await freshBackend(label);
    const dir = await tempDir();
    await Deno.mkdir(`${dir}/tenants`);
    await writer("fill", `${dir}/tenants/one.db`, "20");
    await Deno.writeTextFile(
      `${dir}/walsync.yml`,
      `url: \${BACKUP}\nsync-interval: 200ms\nscan-interval: 300ms\ndbs:\n  - path: tenants/*.db\n`,
    );
    const w = await startWatch(["-c", `${dir}/walsync.yml`], { ...backend.env, BACKUP: backend.url });
    await writer("fill", `${dir}/tenants/two.db`, "30");
    assert.ok(await w.waitFor(/two: new database .*tenants\/two\.db/, 20_000), w.stderr());
    await writer("fill", `${dir}/tenants/two.db`, "5");
    assert.ok(await w.waitFor(/two: snapshot /, 20_000), w.stderr());
    await Deno.remove(`${dir}/tenants/one.db`);
    assert.ok(await w.waitFor(/one: .*one\.db no longer exists/, 20_000), w.stderr());
    // A new file that cannot be watched yet (rollback journal) is reported, and picked up once it can.
    await sqlite3(`${dir}/tenants/three.db`, "CREATE TABLE t(x); INSERT INTO t VALUES (1)");
    assert.ok(await w.waitFor(/three: .*three\.db is not in WAL mode/, 20_000), w.stderr());
    await sleep(1000);
    assert.equal(w.count(/three: .*is not in WAL mode/), 1, "an unchanged file is not retried");
    await sqlite3(`${dir}/tenants/three.db`, "PRAGMA journal_mode=WAL; INSERT INTO t VALUES (2)");
    assert.ok(await w.waitFor(/three: snapshot /, 20_000), w.stderr());
    const { code, stderr } = await w.stop("SIGINT");
    assert.equal(code, 0, stderr);
    const out = `${dir}/two-restored.db`;
    assert.equal(await restoredState(backend, "two", out), "ok 35");
    await sqlite3(`${dir}/tenants/two.db`, "PRAGMA wal_checkpoint(TRUNCATE)");
    assert.ok(await filesEqual(out, `${dir}/tenants/two.db`), "the restore must be byte-exact");
    const out3 = `${dir}/three-restored.db`;
    const r3 = await walsync(["restore", "three", "-o", out3, "-b", backend.url], { env: backend.env });
    assert.equal(r3.code, 0, r3.stderr);
    assert.equal((await sh("sqlite3", [out3, "SELECT count(*) FROM t"])).stdout.trim(), "2");
    await cleanup(dir, backend);
  });
}

Deno.test("config: per-database overrides apply to that database only (snapshot-interval)", async () => {
  const backend = await freshBackend("file");
  const dir = await tempDir();
  for (const name of ["fast", "slow"]) await writer("fill", `${dir}/${name}.db`, "5");
  await Deno.writeTextFile(
    `${dir}/w.yml`,
    `url: ${backend.url}\nsync-interval: 100ms\nsnapshot-interval: 1h\n` +
      `dbs:\n  - path: fast.db\n    snapshot-interval: 300ms\n  - path: slow.db\n`,
  );
  const w = await startWatch(["-c", `${dir}/w.yml`], {});
  for (let i = 0; i < 8; i++) {
    await writer("fill", `${dir}/fast.db`, "1");
    await writer("fill", `${dir}/slow.db`, "1");
    await sleep(250);
  }
  const { code, stderr } = await w.stop("SIGINT");
  assert.equal(code, 0, stderr);
  const objects = await listObjects(backend);
  const snapshots = (name: string) => objects.filter((o) => o.key.startsWith(`${name}/snapshots/`));
  assert.ok(snapshots("fast").length >= 3, `fast.db takes scheduled snapshots:\n${stderr}`);
  assert.equal(snapshots("slow").length, 1, "slow.db keeps the global 1h");
  await cleanup(dir, backend);
});

Deno.test("config: compaction keys reach watch's settings, and each flag given wins over its key", async () => {
  const dir = await tempDir();
  await writer("fill", `${dir}/app.db`, "1");
  const file = `${dir}/w.yml`;
  await Deno.writeTextFile(
    file,
    "url: file:///b\nfine-history: 2h\ncompaction-levels: 1m,10m\ncompaction-interval: 45s\ndbs:\n  - path: app.db\n",
  );
  const settings = (opts: Record<string, string>) =>
    resolveWatchSettings([], { config: file, ...opts }, (k) => (k in opts ? "cli" : "default"), {
      leaseMs: 600_000,
      checkpointFrames: 1000,
    });
  assert.deepEqual((await settings({})).compaction, {
    compactionLevelsMs: [60_000, 600_000],
    fineHistoryMs: 7_200_000,
    compactionIntervalMs: 45_000,
  });
  assert.deepEqual(
    (await settings({ fineHistory: "10m", compactionLevels: "30s,5m", compactionInterval: "5s" })).compaction,
    { compactionLevelsMs: [30_000, 300_000], fineHistoryMs: 600_000, compactionIntervalMs: 5_000 },
  );
  // Levels off from a flag; the interval then falls back to the file's.
  assert.deepEqual((await settings({ compactionLevels: "off" })).compaction, {
    compactionLevelsMs: null,
    fineHistoryMs: 7_200_000,
    compactionIntervalMs: 45_000,
  });
  await cleanup(dir);
});
