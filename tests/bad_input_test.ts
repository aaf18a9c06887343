/**
 * Bad input: a clear message on stderr, a meaningful non-zero exit code, nothing written.
 */
import assert from "node:assert/strict";
import { cleanup, filesIn, freshBackend, listKeys, s3Settings, tempDir, walsync, writer } from "./helpers.ts";

/** A TCP port on 127.0.0.1 with nothing listening. */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function sampleDb(): Promise<{ dir: string; db: string }> {
  const dir = await tempDir();
  const db = `${dir}/app.db`;
  await writer("fill", db, "20");
  return { dir, db };
}

Deno.test("snapshot of a missing, non-SQLite, empty file or a directory fails clearly and uploads nothing", async () => {
  for (const label of ["s3", "file"] as const) {
    const backend = await freshBackend(label);
    const dir = await tempDir();
    await Deno.writeTextFile(
      `${dir}/notes.txt`,
      "this is not a database, just some text that is long enough ".repeat(5),
    );
    await Deno.writeFile(`${dir}/empty.db`, new Uint8Array());
    const cases: [string, number, RegExp][] = [
      [`${dir}/missing.db`, 3, /database .*missing\.db does not exist/],
      [`${dir}/notes.txt`, 2, /notes\.txt is not a SQLite database/],
      [`${dir}/empty.db`, 2, /empty\.db is empty: not a SQLite database/],
      [dir, 2, /is not a regular file/],
    ];
    for (const [path, code, message] of cases) {
      const r = await walsync(["snapshot", path, "-b", backend.url, "--name", "x"], { env: backend.env });
      assert.equal(r.code, code, `${path}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(r.stdout, "");
    }
    assert.deepEqual(await listKeys(backend), []);
  }
});

Deno.test("malformed backup URLs and names are usage errors (exit 2)", async () => {
  const { db } = await sampleDb();
  for (
    const url of ["http://example.com/x", "s3://", "s3://UPPER_CASE", "file://relative/dir", "/just/a/path"]
  ) {
    const r = await walsync(["snapshot", db, "-b", url]);
    assert.equal(r.code, 2, `${url}: ${r.stderr}`);
    assert.match(r.stderr, /backup URL|bucket name|file URL/);
  }
  const backend = await freshBackend("file");
  const badName = await walsync(["snapshot", db, "-b", backend.url, "--name", "../evil"]);
  assert.equal(badName.code, 2);
  assert.match(badName.stderr, /invalid database name/);
  const badTime = await walsync([
    "restore",
    "app",
    "-o",
    "/tmp/x.db",
    "-b",
    backend.url,
    "--point-in-time",
    "yesterday",
  ]);
  assert.equal(badTime.code, 2);
  assert.match(badTime.stderr, /invalid --point-in-time/);
  const unknown = await walsync(["snapshot", db, "-b", backend.url, "--frobnicate"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown option '--frobnicate'/);
  const noBackup = await walsync(["list"]);
  assert.equal(noBackup.code, 2);
  assert.match(noBackup.stderr, /required option '-b, --backup <URL>'/);
  assert.deepEqual(await listKeys(backend), []);
});

Deno.test("S3: missing or wrong credentials, unknown bucket, unreachable endpoint", async () => {
  const s3 = s3Settings();
  const { db } = await sampleDb();
  const backend = await freshBackend("s3");
  const missing = await walsync(["snapshot", db, "-b", backend.url], {
    env: { AWS_ENDPOINT_URL_S3: s3.endpoint, AWS_ACCESS_KEY_ID: "", AWS_SECRET_ACCESS_KEY: "" },
  });
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /missing S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);

  const wrongSecret = "wrong-secret-value-0123456789abcdefghijkl";
  for (const args of [["snapshot", db], ["list"], ["restore", "app", "-o", `${db}.out`]]) {
    const r = await walsync([...args, "-b", backend.url], {
      env: { ...s3.env, AWS_SECRET_ACCESS_KEY: wrongSecret },
    });
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr, /access denied/);
    assert.ok(
      !r.stderr.includes(wrongSecret) && !r.stdout.includes(wrongSecret),
      "the secret must never be printed",
    );
    assert.ok(!/Signature=[0-9a-f]/.test(r.stderr), "no signature may be printed");
  }
  const wrongKey = await walsync(["list", "-b", backend.url], {
    env: { ...s3.env, AWS_ACCESS_KEY_ID: "AKIANOSUCHKEY000000" },
  });
  assert.equal(wrongKey.code, 5);
  assert.match(wrongKey.stderr, /access denied/);

  const noBucket = await walsync(["snapshot", db, "-b", "s3://no-such-bucket-walsync/x"], { env: s3.env });
  assert.equal(noBucket.code, 5);
  assert.match(noBucket.stderr, /bucket "no-such-bucket-walsync" does not exist/);

  const port = closedPort();
  for (const args of [["snapshot", db], ["list"]]) {
    const r = await walsync([...args, "-b", backend.url, "--endpoint", `http://127.0.0.1:${port}`], {
      env: s3.env,
    });
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr, new RegExp(`cannot reach S3 endpoint http://127.0.0.1:${port}`));
  }
  const badEndpoint = await walsync(["list", "-b", backend.url, "--endpoint", "ftp://x"], { env: s3.env });
  assert.equal(badEndpoint.code, 2);
  assert.match(badEndpoint.stderr, /invalid S3 endpoint/);
  assert.deepEqual(await listKeys(backend), [], "nothing may have been written");
  assert.ok(!(await Deno.stat(`${db}.out`).catch(() => null)));
});

Deno.test("restore: missing backup, missing output directory, unknown point in time", async () => {
  const backend = await freshBackend("file");
  const dir = await tempDir();
  const none = await walsync(["restore", "ghost", "-o", `${dir}/g.db`, "-b", backend.url]);
  assert.equal(none.code, 3);
  assert.match(none.stderr, /no backup of "ghost"/);
  const { db } = await sampleDb();
  assert.equal((await walsync(["snapshot", db, "-b", backend.url])).code, 0);
  const noDir = await walsync(["restore", "app", "-o", `${dir}/missing/dir/out.db`, "-b", backend.url]);
  assert.equal(noDir.code, 3);
  assert.match(noDir.stderr, /output directory .* does not exist/);
  const early = await walsync([
    "restore",
    "app",
    "-o",
    `${dir}/e.db`,
    "-b",
    backend.url,
    "--point-in-time",
    "2001-01-01T00:00:00Z",
  ]);
  assert.equal(early.code, 3);
  assert.match(early.stderr, /is before the first backup of "app" \(earliest restorable time: /);
  assert.deepEqual(await filesIn(dir), []);
});

Deno.test("--help works for every command and goes to stdout", async () => {
  for (const args of [["--help"], ["snapshot", "--help"], ["list", "--help"], ["restore", "--help"]]) {
    const r = await walsync(args);
    assert.equal(r.code, 0, `${args}: ${r.stderr}`);
    assert.match(r.stdout, /Usage: walsync/);
  }
});

Deno.test("restore --point-in-time: impossible dates and times without a zone are refused (exit 2, with an example)", async () => {
  const backend = await freshBackend("file");
  const { dir, db } = await sampleDb();
  assert.equal((await walsync(["snapshot", db, "-b", backend.url])).code, 0);
  const cases: [string, RegExp][] = [
    ["2026-02-30T10:00:00Z", /2026-02 has no day 30/],
    ["2026-11-31T00:00:00Z", /2026-11 has no day 31/],
    ["2099-11-24T10:30:00", /no time zone/],
    ["2026-11-24", /a date alone is ambiguous/],
  ];
  for (const [time, reason] of cases) {
    const r = await walsync([
      "restore",
      "app",
      "-o",
      `${dir}/out.db`,
      "-b",
      backend.url,
      "--point-in-time",
      time,
    ]);
    assert.equal(r.code, 2, `${time}: ${r.stderr}`);
    assert.match(r.stderr, reason);
    assert.match(r.stderr, /e\.g\. 2026-11-24T10:30:00Z/);
    assert.equal(r.stderr.trim().split("\n").length, 1, "one line");
  }
  assert.ok(!(await Deno.stat(`${dir}/out.db`).catch(() => null)), "nothing written");
  const help = await walsync(["restore", "--help"]);
  assert.match(help.stdout, /RFC 3339 with a zone/);
  await cleanup(backend, dir);
});
