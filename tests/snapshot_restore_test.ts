/**
 * snapshot / list / restore, end to end, against the real S3 server (RGW) and a local directory.
 */
import assert from "node:assert/strict";
import {
  fetchObject,
  filesEqual,
  filesIn,
  flipByte,
  freshBackend,
  listKeys,
  objectMetadata,
  replaceObject,
  sha256File,
  sqlite3,
  tempDir,
  walsync,
  WRITER,
  writer,
} from "./helpers.ts";

for (const label of ["s3", "file"] as const) {
  Deno.test(`[${label}] snapshot of a WAL database restores byte-for-byte to its checkpointed state`, async () => {
    const backend = await freshBackend(label);
    const dir = await tempDir();
    const db = `${dir}/app.db`;
    await writer("fill", db, "3000");
    await writer("fill", db, "500"); // a second transaction, still only in the WAL
    const walSize = (await Deno.stat(`${db}-wal`)).size;
    assert.ok(walSize > 100_000, `the latest changes must be in the WAL (WAL is ${walSize} bytes)`);
    const dbBefore = await sha256File(db);

    const snap = await walsync(["snapshot", db, "-b", backend.url, "--json"], { env: backend.env });
    assert.equal(snap.code, 0, snap.stderr);
    const result = JSON.parse(snap.stdout);
    assert.equal(result.name, "app");
    assert.equal(result.generation, 1);
    assert.equal(await sha256File(db), dbBefore, "snapshot must not change the database file");

    const out = `${dir}/restored.db`;
    const restore = await walsync(["restore", "app", "-o", out, "-b", backend.url], { env: backend.env });
    assert.equal(restore.code, 0, restore.stderr);

    await sqlite3(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    assert.ok(await filesEqual(out, db), "restored file must equal the checkpointed source byte for byte");
    assert.equal((await writer("check", out)).trim(), "ok 3500");
    assert.deepEqual((await filesIn(dir)).filter((f) => !/-(wal|shm)$/.test(f)), ["app.db", "restored.db"]);
  });

  Deno.test(`[${label}] snapshot of a rollback-journal database restores byte-for-byte`, async () => {
    const backend = await freshBackend(label);
    const dir = await tempDir();
    const db = `${dir}/journal.db`;
    await sqlite3(
      db,
      "CREATE TABLE k(x); INSERT INTO k SELECT randomblob(1000) FROM generate_series(1, 500);",
    );
    const snap = await walsync(["snapshot", db, "-b", backend.url], { env: backend.env });
    assert.equal(snap.code, 0, snap.stderr);
    const out = `${dir}/out.db`;
    const restore = await walsync(["restore", "journal", "-o", out, "-b", backend.url], { env: backend.env });
    assert.equal(restore.code, 0, restore.stderr);
    assert.ok(await filesEqual(out, db));
  });

  Deno.test(`[${label}] a snapshot taken during continuous writes restores to one committed state`, async () => {
    const backend = await freshBackend(label);
    const dir = await tempDir();
    const db = `${dir}/busy.db`;
    await writer("fill", db, "2000");
    const child = new Deno.Command("python3", { args: [WRITER, "continuous", db, "6"], stdout: "piped" })
      .spawn();
    const committed: number[] = [];
    const reading = (async () => {
      let buffer = "";
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
        buffer += chunk;
        const lines = buffer.split("\n");
        buffer = lines.pop()!;
        for (const line of lines) committed.push(Number(line));
      }
    })();
    // Let the writer get going (it may be slow to start on a loaded machine).
    for (let i = 0; i < 600 && committed.length < 20; i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(committed.length >= 20, "the writer must be committing before the snapshot starts");
    const committedBefore = committed.at(-1)!;
    const snap = await walsync(["snapshot", db, "-b", backend.url], { env: backend.env });
    assert.equal(snap.code, 0, snap.stderr);
    assert.equal((await child.status).code, 0);
    await reading;
    assert.ok(committed.length > 20, "the writer must have kept committing");
    const out = `${dir}/out.db`;
    const restore = await walsync(["restore", "busy", "-o", out, "-b", backend.url], { env: backend.env });
    assert.equal(restore.code, 0, restore.stderr);
    const check = (await writer("check", out)).trim();
    assert.match(check, /^ok \d+$/, check);
    const k = Number(check.split(" ")[1]);
    // Everything committed before the snapshot started is in it; nothing the writer never committed is.
    assert.ok(
      k >= committedBefore && k <= committed.at(-1)!,
      `state ${k} vs committed ${committedBefore}..${committed.at(-1)}`,
    );
  });

  Deno.test(`[${label}] every snapshot carries the SHA-256 of its content, seen by a second client`, async () => {
    const backend = await freshBackend(label);
    const dir = await tempDir();
    const db = `${dir}/meta.db`;
    await writer("fill", db, "800");
    const snap = await walsync(["snapshot", db, "-b", backend.url, "--json"], { env: backend.env });
    assert.equal(snap.code, 0, snap.stderr);
    const { key, sha256 } = JSON.parse(snap.stdout);
    const metadata = await objectMetadata(backend, key);
    const copy = `${dir}/copy`;
    await fetchObject(backend, key, copy);
    assert.equal(metadata.sha256, await sha256File(copy));
    assert.equal(metadata.sha256, sha256);
  });

  Deno.test(`[${label}] a flipped byte in a snapshot fails the restore, names the object, leaves nothing`, async () => {
    const backend = await freshBackend(label);
    const dir = await tempDir();
    const db = `${dir}/bad.db`;
    await writer("fill", db, "800");
    const snap = await walsync(["snapshot", db, "-b", backend.url, "--json", "--compression", "none"], {
      env: backend.env,
    });
    assert.equal(snap.code, 0, snap.stderr);
    const { key } = JSON.parse(snap.stdout);
    const copy = `${dir}/copy`;
    await fetchObject(backend, key, copy);
    await flipByte(copy, 70_000);
    await replaceObject(backend, key, copy);
    const outDir = await tempDir();
    const restore = await walsync(["restore", "bad", "-o", `${outDir}/out.db`, "-b", backend.url], {
      env: backend.env,
    });
    assert.equal(restore.code, 4, restore.stderr);
    assert.match(restore.stderr, new RegExp(`${key.replaceAll(".", "\\.")}.*SHA-256 mismatch`));
    assert.deepEqual(await filesIn(outDir), [], "no output and no temporary file may be left");
  });

  Deno.test(`[${label}] list shows each database with its latest snapshot, in text and JSON`, async () => {
    const backend = await freshBackend(label);
    const dir = await tempDir();
    await writer("fill", `${dir}/one.db`, "100");
    await writer("fill", `${dir}/two.db`, "200");
    for (const name of ["one", "two"]) {
      const r = await walsync(["snapshot", `${dir}/${name}.db`, "-b", backend.url], { env: backend.env });
      assert.equal(r.code, 0, r.stderr);
    }
    const again = await walsync(["snapshot", `${dir}/two.db`, "-b", backend.url, "--json"], {
      env: backend.env,
    });
    const second = JSON.parse(again.stdout);
    assert.equal(second.generation, 2, "each one-shot snapshot starts a new generation");
    const json = await walsync(["list", "-b", backend.url, "--json"], { env: backend.env });
    assert.equal(json.code, 0, json.stderr);
    const listed = JSON.parse(json.stdout);
    assert.deepEqual(listed.map((d: { name: string }) => d.name), ["one", "two"]);
    const two = listed[1];
    assert.equal(two.generation, 2);
    assert.equal(two.latestSnapshot.key, second.key);
    assert.equal(two.latestSnapshot.size, second.size);
    assert.equal(two.latestSnapshot.time, second.time);
    assert.equal(two.generations.length, 2);
    const text = await walsync(["list", "-b", backend.url], { env: backend.env });
    assert.match(text.stdout, /^NAME\s+GENERATION\s+LATEST SNAPSHOT\s+SIZE/);
    assert.match(text.stdout, /\ntwo\s+00000002\s+\d{4}-/);
    assert.equal(text.stderr, "");
  });

  Deno.test(`[${label}] restore refuses to overwrite, honours --force and the --if-* options`, async () => {
    const backend = await freshBackend(label);
    const dir = await tempDir();
    const db = `${dir}/o.db`;
    await writer("fill", db, "50");
    assert.equal((await walsync(["snapshot", db, "-b", backend.url], { env: backend.env })).code, 0);
    const out = `${dir}/out.db`;
    await Deno.writeTextFile(out, "precious");
    const refused = await walsync(["restore", "o", "-o", out, "-b", backend.url], { env: backend.env });
    assert.equal(refused.code, 6);
    assert.match(refused.stderr, /already exists; use --force/);
    assert.equal(await Deno.readTextFile(out), "precious");
    const skipped = await walsync(["restore", "o", "-o", out, "-b", backend.url, "--if-db-not-exists"], {
      env: backend.env,
    });
    assert.equal(skipped.code, 0);
    assert.equal(await Deno.readTextFile(out), "precious");
    const forced = await walsync(["restore", "o", "-o", out, "-b", backend.url, "--force"], {
      env: backend.env,
    });
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal((await writer("check", out)).trim(), "ok 50");
    const none = await walsync([
      "restore",
      "nothing",
      "-o",
      `${dir}/n.db`,
      "-b",
      backend.url,
      "--if-replica-exists",
    ], {
      env: backend.env,
    });
    assert.equal(none.code, 0, none.stderr);
    const missing = await walsync(["restore", "nothing", "-o", `${dir}/n.db`, "-b", backend.url], {
      env: backend.env,
    });
    assert.equal(missing.code, 3);
    assert.match(missing.stderr, /no backup of "nothing"/);
    assert.deepEqual((await filesIn(dir)).filter((f) => !/-(wal|shm)$/.test(f)), ["o.db", "out.db"]);
    assert.ok((await listKeys(backend)).every((k) => k.startsWith("o/")));
  });
}
