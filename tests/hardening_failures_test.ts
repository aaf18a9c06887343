/**
 * The failure table: ordinary failures a user can cause or meet (permissions, a full disk, a
 * read-only or unreadable store, a hot journal, bad URLs, non-SQLite input) end with a one-line
 * message naming the file or object and the documented exit code; never "internal error" (70), never
 * a JavaScript stack trace.
 *
 * root ignores file permissions, so the permission rows run walsync as the unprivileged user
 * `nobody` (setpriv); they are skipped, with the reason printed, when that is not possible.
 */
import assert from "node:assert/strict";
import { cleanup, filesIn, MAIN, mustRun, type Run, sh, tempDir, walsync, writer } from "./helpers.ts";

const NOBODY = 65534;

/** One row of the failure table. */
interface Row {
  label: string;
  /** "nobody": run as an unprivileged user; "root": needs root itself (mount). */
  as?: "nobody" | "root";
  args: string[];
  code: number;
  /** The message must match (it names the file or object). */
  message: RegExp;
  /** More than one log line is fine (watch reports per database, then a summary). */
  multiline?: boolean;
  /** Checked after the run (e.g. nothing left behind). */
  after?: () => Promise<void>;
}

/** Why walsync cannot be run as `nobody` here, or null when it can (then `env` holds its DENO_DIR). */
async function nobodySetup(dir: string): Promise<{ skip: string | null; env: Record<string, string> }> {
  if (Deno.uid() !== 0) return { skip: "not root: cannot switch to an unprivileged user", env: {} };
  const info = JSON.parse(await mustRun(Deno.execPath(), ["info", "--json"]));
  const denoDir = `${dir}/deno-dir`;
  await Deno.mkdir(denoDir);
  await mustRun("cp", ["-r", `${info.denoDir}/npm`, `${denoDir}/npm`]);
  await mustRun("chown", ["-R", `${NOBODY}:${NOBODY}`, denoDir]);
  const env = { HOME: denoDir, DENO_DIR: denoDir, NO_COLOR: "1" };
  const probe = await sh("setpriv", [
    `--reuid=${NOBODY}`,
    `--regid=${NOBODY}`,
    "--clear-groups",
    "env",
    ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
    Deno.execPath(),
    "run",
    "-A",
    "--quiet",
    MAIN,
    "--version",
  ]);
  if (probe.code !== 0) return { skip: `walsync does not run as nobody here: ${probe.stderr.trim()}`, env };
  return { skip: null, env };
}

async function walsyncAsNobody(args: string[], env: Record<string, string>): Promise<Run> {
  return await sh("setpriv", [
    `--reuid=${NOBODY}`,
    `--regid=${NOBODY}`,
    "--clear-groups",
    "env",
    ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
    Deno.execPath(),
    "run",
    "-A",
    "--quiet",
    MAIN,
    ...args,
  ]);
}

/** Makes `path` and everything under it owned by nobody. */
const giveToNobody = (path: string) => mustRun("chown", ["-R", `${NOBODY}:${NOBODY}`, path]);

Deno.test("failure table: exit codes, one-line messages naming the file, no stack traces", async () => {
  const dir = await tempDir();
  await Deno.chmod(dir, 0o755); // nobody may enter; everything root creates here is read-only to nobody
  const store = `${dir}/store`;
  const url = `file://${store}`;
  const app = `${dir}/app.db`;
  await writer("fill", app, "3000"); // ~2.5 MB, mostly in the WAL
  assert.equal((await walsync(["snapshot", app, "-b", url])).code, 0);
  await mustRun("chmod", ["-R", "a+rX", dir]);

  // nobody's own copy of the database (the application's user), next to root's read-only store.
  const mine = `${dir}/mine`;
  await Deno.mkdir(mine);
  await writer("fill", `${mine}/app.db`, "20");
  await giveToNobody(mine);
  // A database nobody can write, except its -shm (owned by root): the write lock cannot be taken.
  const shm = `${dir}/shm`;
  await Deno.mkdir(shm);
  await writer("fill", `${shm}/s.db`, "20");
  await giveToNobody(shm);
  await Deno.chown(`${shm}/s.db-shm`, 0, 0);
  await Deno.chmod(`${shm}/s.db-shm`, 0o644);
  // A store nobody cannot read.
  const secret = `${dir}/secret`;
  await mustRun("cp", ["-r", store, secret]);
  await Deno.chmod(secret, 0o700);
  // An output directory nobody cannot write.
  const readOnlyOut = `${dir}/ro-out`;
  await Deno.mkdir(readOnlyOut, { mode: 0o755 });
  // A rollback-journal database with a hot journal (its writer died mid-transaction).
  const hot = `${dir}/hot.db`;
  await mustRun("python3", [
    "-c",
    `import sqlite3, os, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("CREATE TABLE t(x)")
db.execute("INSERT INTO t VALUES (randomblob(1000))")
for _ in range(9): db.execute("INSERT INTO t SELECT randomblob(1000) FROM t")
db.execute("PRAGMA cache_size=5")  # the update spills into the database file: the journal is hot
db.execute("BEGIN")
db.execute("UPDATE t SET x = randomblob(1000)")
os._exit(0)`,
    hot,
  ]);
  assert.ok((await Deno.stat(`${hot}-journal`)).size > 0, "a hot journal was left");
  await Deno.writeTextFile(`${dir}/notes.txt`, "not a database, just text ".repeat(10));
  // A full disk: a 2 MB tmpfs (root only).
  const tiny = `${dir}/tiny`;
  await Deno.mkdir(tiny);
  const mounted = Deno.uid() === 0 &&
    (await sh("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", tiny])).code === 0;

  const nobody = await nobodySetup(dir);
  const rows: Row[] = [
    {
      label: "snapshot to a read-only store",
      as: "nobody",
      args: ["snapshot", `${mine}/app.db`, "-b", url],
      code: 5,
      message: /cannot write backup object .*\/store\/app\/snapshots\/.*: permission denied/,
    },
    {
      label: "watch to a read-only store",
      as: "nobody",
      args: ["watch", `${mine}/app.db`, "-b", url],
      code: 5,
      message: /cannot write backup object .*\/store\/app\/lease\.json: permission denied/,
      multiline: true,
    },
    {
      label: "restore into a directory that is not writable",
      as: "nobody",
      args: ["restore", "app", "-o", `${readOnlyOut}/app.db`, "-b", url],
      code: 1,
      message: /cannot write .*\/ro-out\/app\.db: permission denied/,
      after: async () => assert.deepEqual(await filesIn(readOnlyOut), []),
    },
    ...["list", "verify", "restore"].map((command): Row => ({
      label: `${command} of an unreadable store`,
      as: "nobody",
      args: [
        command,
        ...(command === "restore" ? ["app", "-o", `${mine}/out.db`] : []),
        "-b",
        `file://${secret}`,
      ],
      code: 5,
      message: /cannot (list|read) backup (directory|object) .*\/secret(\/\S*)?: permission denied/,
    })),
    ...["snapshot", "watch"].map((command): Row => ({
      label: `${command} of a database whose -shm is read-only`,
      as: "nobody",
      args: [command, `${shm}/s.db`, "-b", `file://${mine}/store-${command}`],
      code: 1,
      message: /cannot take the write lock of .*\/shm\/s\.db: .*write access/,
      multiline: command === "watch",
    })),
    // SQLite would open it read-only, where BEGIN IMMEDIATE takes no lock: the barrier would be a lie.
    ...["snapshot", "watch"].map((command): Row => ({
      label: `${command} of a database the user cannot write`,
      as: "nobody",
      args: [command, app, "-b", `file://${mine}/ro-db-${command}`],
      code: 1,
      message: /cannot take the write lock of .*\/app\.db: .*\/app\.db is not writable \(permission denied\)/,
      multiline: command === "watch",
    })),
    {
      label: "restore onto a full disk",
      as: "root",
      args: ["restore", "app", "-o", `${tiny}/app.db`, "-b", url],
      code: 1,
      message: /cannot write .*\/tiny\/app\.db: no space left on device/,
      after: async () => assert.deepEqual(await filesIn(tiny), [], "nothing left on the full disk"),
    },
    {
      label: "snapshot of a database with a hot journal",
      args: ["snapshot", hot, "-b", `file://${dir}/hot-store`],
      code: 1,
      message: /hot\.db has a hot rollback journal .*hot\.db-journal/,
      after: async () =>
        assert.ok(!(await Deno.stat(`${dir}/hot-store`).catch(() => null)), "nothing written"),
    },
    {
      label: "a stray % in a file:// URL",
      args: ["list", "-b", `file://${dir}/50%off`],
      code: 2,
      message: /invalid file URL ".*50%off": .*write %25 for "%" itself/,
    },
    {
      label: "watch of a file that is not a SQLite database",
      args: ["watch", `${dir}/notes.txt`, "-b", `file://${dir}/notes-store`],
      code: 2,
      message: /notes\.txt is not a SQLite database/,
      multiline: true,
    },
    {
      label: "a store path that is a file",
      args: ["snapshot", app, "-b", `file://${dir}/notes.txt`],
      code: 5,
      message: /cannot (create|list) backup directory .*notes\.txt: not a directory/,
    },
  ];

  try {
    for (const row of rows) {
      if (row.as === "nobody" && nobody.skip) {
        console.log(`skipped "${row.label}": ${nobody.skip}`);
        continue;
      }
      if (row.as === "root" && !mounted) {
        console.log(`skipped "${row.label}": needs root to mount a small tmpfs`);
        continue;
      }
      const r = row.as === "nobody" ? await walsyncAsNobody(row.args, nobody.env) : await walsync(row.args);
      const context = `${row.label}: exit ${r.code}\n${r.stderr}`;
      assert.equal(r.code, row.code, context);
      assert.match(r.stderr, row.message, context);
      assert.doesNotMatch(r.stderr, /^\s+at /m, `no stack trace. ${context}`);
      assert.doesNotMatch(r.stderr, /internal error|\w*Error: |Uncaught/, `no error dump. ${context}`);
      assert.equal(r.stdout, "", context);
      const lines = r.stderr.trim().split("\n");
      const errors = lines.filter((line) => / ERROR /.test(line));
      if (!row.multiline) assert.equal(errors.length, 1, `one error line. ${context}`);
      assert.doesNotMatch(
        r.stderr,
        /stored as|restored |snapshot \S+ generation/,
        `nothing success-like. ${context}`,
      );
      for (const line of lines) assert.match(line, /^\S+ (INFO|WARN|ERROR) /, `log lines only. ${context}`);
      await row.after?.();
    }
    // Decoded properly: %25 is a "%", %20 a space.
    await Deno.mkdir(`${dir}/50%off dir`);
    const encoded = await walsync(["snapshot", app, "-b", `file://${dir}/50%25off%20dir/store`]);
    assert.equal(encoded.code, 0, encoded.stderr);
    assert.ok((await Deno.stat(`${dir}/50%off dir/store/app`)).isDirectory);
  } finally {
    if (mounted) await sh("umount", [tiny]);
  }
  await cleanup(dir);
});
