/**
 * walsync must see the files SQLite sees: databases reached through symbolic links (to the file,
 * in a parent directory, relative, a link to a link), hard links, and names with spaces, unicode,
 * `%` and colons. The application writes through the path it was given; the data sits only in the
 * WAL (never checkpointed), which is where a wrong path loses everything.
 */
import assert from "node:assert/strict";
import { openReader } from "../src/sqlite/database.ts";
import {
  cleanup,
  filesEqual,
  freshBackend,
  restore,
  spawnWatch,
  sqlite3,
  startWatch,
  tempDir,
  waitForState,
  walsync,
  writer,
} from "./helpers.ts";

/** One database as the application reaches it, and how walsync is told about it. */
interface Case {
  label: string;
  /** The real file (where SQLite keeps the WAL). */
  real: string;
  /** The path the application and walsync are given. */
  path: string;
  /** The database's name in the backup. */
  name: string;
  /** Extra arguments naming it explicitly (when its file name is not a valid name). */
  explicit?: boolean;
}

async function makeCases(dir: string): Promise<Case[]> {
  await Deno.mkdir(`${dir}/real`);
  await Deno.mkdir(`${dir}/sp ü%41:x`);
  await Deno.symlink(`${dir}/real/a.db`, `${dir}/file-link.db`);
  await Deno.symlink(`${dir}/real`, `${dir}/dirlink`);
  await Deno.symlink("real/c.db", `${dir}/rel-link.db`);
  await Deno.symlink("real/d.db", `${dir}/chain-mid.db`);
  await Deno.symlink("chain-mid.db", `${dir}/chain.db`);
  const cases: Case[] = [
    {
      label: "symlink to the file",
      real: `${dir}/real/a.db`,
      path: `${dir}/file-link.db`,
      name: "file-link",
    },
    { label: "symlinked parent directory", real: `${dir}/real/b.db`, path: `${dir}/dirlink/b.db`, name: "b" },
    { label: "relative symlink", real: `${dir}/real/c.db`, path: `${dir}/rel-link.db`, name: "rel-link" },
    { label: "link to a link", real: `${dir}/real/d.db`, path: `${dir}/chain.db`, name: "chain" },
    { label: "hard link", real: `${dir}/hard.db`, path: `${dir}/hard.db`, name: "hard" },
    {
      label: "spaces, unicode, % and colons",
      real: `${dir}/sp ü%41:x/a b ü%20:c.db`,
      path: `${dir}/sp ü%41:x/a b ü%20:c.db`,
      name: "special",
      explicit: true,
    },
  ];
  for (const c of cases) {
    if (c.label === "hard link") {
      await writer("fill", `${dir}/real/e.db`, "1"); // created under another name ...
      await sqlite3(`${dir}/real/e.db`, "PRAGMA wal_checkpoint(TRUNCATE)");
      await Deno.link(`${dir}/real/e.db`, c.path); // ... and used through the hard link from now on
    } else {
      await writer("fill", c.real, "1");
      await sqlite3(c.real, "PRAGMA wal_checkpoint(TRUNCATE)"); // the database file holds row 1 only
    }
    await writer("fill", c.path, "19"); // rows 2..20 only in the WAL, written through the link
  }
  return cases;
}

Deno.test("symlinks, hard links and odd names: snapshot and watch back up what SQLite sees; restores are byte-exact", async () => {
  const backend = await freshBackend("file");
  const dir = await tempDir();
  const cases = await makeCases(dir);

  // One-shot snapshots through each path (one with a relative path from the link's directory).
  for (const c of cases) {
    const args = c.label === "relative symlink"
      ? ["snapshot", "rel-link.db", "-b", backend.url]
      : ["snapshot", c.path, "-b", backend.url, ...(c.explicit ? ["--name", c.name] : [])];
    const r = await walsync(args, { env: backend.env, cwd: dir });
    assert.equal(r.code, 0, `${c.label}: ${r.stderr}`);
    assert.equal(
      JSON.parse((await walsync([...args, "--json"], { env: backend.env, cwd: dir })).stdout).name,
      c.name,
    );
    const out = `${dir}/${c.name}.snap`;
    assert.equal((await restore(backend, c.name, out)).code, 0);
    assert.equal(
      (await writer("check", out)).trim(),
      "ok 20",
      `${c.label}: the snapshot must hold the WAL's rows`,
    );
  }

  // One watch for all of them; the application goes on writing through its paths.
  const watch = await startWatch([
    ...cases.map((c) => c.explicit ? `${c.path}:${c.name}` : c.path),
    "-b",
    backend.url,
    "--sync-interval",
    "0.2",
  ], backend.env);
  for (const c of cases) await writer("fill", c.path, "30");
  for (const c of cases) await waitForState(backend, c.name, `${dir}/${c.name}.out`, "ok 50");
  const stopped = await watch.stop();
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.match(stopped.stderr, /file-link\.db resolves to .*\/real\/a\.db/);

  for (const c of cases) {
    const out = `${dir}/${c.name}.final`;
    const r = await restore(backend, c.name, out);
    assert.equal(r.code, 0, `${c.label}: ${r.stderr}`);
    await sqlite3(c.real, "PRAGMA wal_checkpoint(TRUNCATE)");
    assert.ok(
      await filesEqual(out, c.real),
      `${c.label}: the latest restore must equal the checkpointed source`,
    );
  }
  const verified = await walsync(["verify", "-b", backend.url], { env: backend.env });
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);
  await cleanup(backend, dir);
});

/** Runs a watch that must exit by itself; one still running after 20 s is killed (and fails the test). */
async function watchExit(args: string[]): Promise<{ code: number; stderr: string }> {
  const watch = spawnWatch(args);
  await watch.waitFor(/(?!)/, 20_000);
  return await watch.stop("SIGKILL");
}

Deno.test("watch path:name with colons in file names: an existing file wins; two links to one file are refused", async () => {
  const backend = await freshBackend("file");
  const dir = await tempDir();
  await writer("fill", `${dir}/data`, "3"); // a database called "data" ...
  await writer("fill", `${dir}/data:v2.db`, "7"); // ... and one whose name contains a colon
  // "data:v2.db" is the existing file, not the database "data" stored as "v2.db". Its file name
  // cannot be a name in the backup, so walsync asks for one.
  const unnamed = await watchExit([`${dir}/data:v2.db`, "-b", backend.url]);
  assert.equal(unnamed.code, 2, unnamed.stderr);
  assert.match(
    unnamed.stderr,
    /invalid database name "data:v2".*give the database a name: .*data:v2\.db:NAME/,
  );
  const snapshot = await walsync(["snapshot", `${dir}/data:v2.db`, "-b", backend.url]);
  assert.equal(snapshot.code, 2, snapshot.stderr);
  assert.match(snapshot.stderr, /invalid database name "data:v2".*give the database a name with --name NAME/);
  // With a name after the last colon, the path is what comes before it.
  const watch = await startWatch([`${dir}/data:v2.db:v2`, "-b", backend.url, "--sync-interval", "0.2"]);
  await waitForState(backend, "v2", `${dir}/v2.out`, "ok 7");
  assert.equal((await watch.stop()).code, 0);

  await Deno.symlink(`${dir}/data`, `${dir}/alias.db`);
  const twice = await watchExit([`${dir}/data:one`, `${dir}/alias.db`, "-b", backend.url]);
  assert.equal(twice.code, 2);
  assert.match(twice.stderr, /data and .*alias\.db are the same database/);
  const help = await walsync(["watch", "--help"]);
  assert.match(help.stdout, /existing file wins/);
  await cleanup(backend, dir);
});

Deno.test("openReader refuses a path whose WAL SQLite keeps elsewhere (a symbolic link)", async () => {
  const dir = await tempDir();
  await writer("fill", `${dir}/real.db`, "2");
  await Deno.symlink(`${dir}/real.db`, `${dir}/link.db`);
  assert.throws(
    () => openReader(`${dir}/link.db`),
    /link\.db: SQLite opens it as .*\/real\.db and keeps its WAL there/,
  );
  openReader(`${dir}/real.db`).close();
  await cleanup(dir);
});
