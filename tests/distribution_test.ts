/**
 * Distribution, as users meet it: `walsync --version`, the JSR package's file list, scripts/install.sh
 * against a local fake release (HTTP on 127.0.0.1 and file://), the release smoke test and notes, and the
 * CI restore recipe (scripts/ci-restore-check.sh) on file:// and S3. The compiled binaries themselves are
 * built and run by .github/workflows/release.yml (deno compile cannot run here); scripts/walsync stands
 * in for them.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  cleanup,
  freshBackend,
  OUTPUT_LOG,
  REPO,
  type Run,
  sh,
  tempDir,
  walsync,
  writer,
} from "./helpers.ts";
import denoConfig from "../deno.json" with { type: "json" };

const LAUNCHER = `${REPO}scripts/walsync`;
const VERSION = denoConfig.version;

/** Runs a script; its output goes to the suite's output log (searched for secrets by scripts/test.sh). */
async function script(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
  cwd?: string,
): Promise<Run> {
  const run = await sh(cmd, args, { env: { NO_COLOR: "1", ...env }, cwd });
  if (OUTPUT_LOG) {
    Deno.writeTextFileSync(OUTPUT_LOG, `$ ${cmd} ${args.join(" ")}\n${run.stdout}${run.stderr}\n`, {
      append: true,
    });
  }
  return run;
}

Deno.test("walsync --version prints the version from deno.json and the target", async () => {
  const run = await walsync(["--version"]);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout.trim(), `walsync ${VERSION} (${Deno.build.target})`);
});

Deno.test("deno publish --dry-run is clean and publishes only the CLI: main.ts, src/, README, LICENSE, deno.json", async () => {
  const run = await sh(Deno.execPath(), ["publish", "--dry-run", "--allow-dirty"], {
    cwd: REPO,
    env: { NO_COLOR: "1" },
  });
  const output = run.stdout + run.stderr;
  assert.equal(run.code, 0, output);
  assert.doesNotMatch(output, /warning/i);
  const files = [...output.matchAll(/^\s+file:\/\/(\S+)/gm)].map((m) => m[1].slice(REPO.length)).sort();
  const outside = files.filter((f) =>
    !["main.ts", "deno.json", "README.md", "LICENSE"].includes(f) && !f.startsWith("src/")
  );
  assert.deepEqual(outside, [], "nothing but the CLI's files may be published");
  for (
    const required of [
      "main.ts",
      "deno.json",
      "README.md",
      "LICENSE",
      "src/errors.ts",
      "src/commands/restore.ts",
    ]
  ) {
    assert.ok(files.includes(required), `${required} must be published (got ${files.join(", ")})`);
  }
  const sources: string[] = [];
  for await (const f of walk(`${REPO}src`)) sources.push(f.slice(REPO.length));
  assert.deepEqual(
    files.filter((f) => f.startsWith("src/")),
    sources.sort(),
    "every module under src/ is published",
  );
});

async function* walk(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) yield* walk(path);
    else if (entry.isFile) yield path;
  }
}

/** A fake release directory: one archive per target (its `walsync` runs this checkout) and SHA256SUMS. */
async function fakeRelease(dir: string, version = VERSION): Promise<{ target: string; asset: string }> {
  const target = "x86_64-unknown-linux-gnu";
  const name = `walsync-${version}-${target}`;
  await Deno.mkdir(`${dir}/${name}`, { recursive: true });
  await Deno.writeTextFile(`${dir}/${name}/walsync`, `#!/bin/sh\nexec "${LAUNCHER}" "$@"\n`, { mode: 0o755 });
  await Deno.writeTextFile(`${dir}/${name}/README.md`, "readme\n");
  const tar = await sh("tar", ["-C", dir, "-czf", `${dir}/${name}.tar.gz`, name]);
  assert.equal(tar.code, 0, tar.stderr);
  await Deno.remove(`${dir}/${name}`, { recursive: true });
  // Another target and a wheel, so that the script has to pick the right line.
  await Deno.writeTextFile(`${dir}/walsync-${version}-aarch64-apple-darwin.tar.gz`, "other target");
  const sums = [];
  for (const file of [`${name}.tar.gz`, `walsync-${version}-aarch64-apple-darwin.tar.gz`]) {
    const hash = createHash("sha256").update(await Deno.readFile(`${dir}/${file}`)).digest("hex");
    sums.push(`${hash}  ${file}`);
  }
  sums.push(`${"0".repeat(64)}  walsync-${version}-py3-none-manylinux_2_27_x86_64.whl`);
  await Deno.writeTextFile(`${dir}/SHA256SUMS`, sums.join("\n") + "\n");
  return { target, asset: `${name}.tar.gz` };
}

/** `python3 -m http.server` on 127.0.0.1 (a free port) serving `dir`. */
async function serve(dir: string): Promise<{ url: string; close: () => Promise<void> }> {
  const child = new Deno.Command("python3", {
    args: ["-u", "-m", "http.server", "--bind", "127.0.0.1", "--directory", dir, "0"],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!/port (\d+)/.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`http.server did not start: ${text}`);
    text += value;
  }
  const port = /port (\d+)/.exec(text)![1];
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      child.kill("SIGTERM");
      await reader.cancel().catch(() => {});
      await child.status;
    },
  };
}

Deno.test("install.sh picks the archive for the OS/arch, verifies it against SHA256SUMS and installs it", async () => {
  const tmp = await tempDir();
  const release = `${tmp}/release`;
  await Deno.mkdir(release);
  const { target } = await fakeRelease(release);
  const server = await serve(release);
  try {
    // Over HTTP, latest version (read from SHA256SUMS), into $WALSYNC_INSTALL_DIR.
    const dir = `${tmp}/bin`;
    const run = await script("sh", [`${REPO}scripts/install.sh`], {
      WALSYNC_RELEASE_BASE_URL: server.url,
      WALSYNC_INSTALL_DIR: dir,
      WALSYNC_TARGET: target,
    });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /checksum ok/);
    const installed = await sh(`${dir}/walsync`, ["--version"]);
    assert.equal(installed.stdout.trim(), `walsync ${VERSION} (${Deno.build.target})`);
    assert.equal((await Deno.stat(`${dir}/walsync`)).mode! & 0o777, 0o755);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["walsync"], "nothing else left behind");

    // Default directory ~/.local/bin, an explicit version, detected target (this machine's), file:// URL.
    const home = `${tmp}/home`;
    const byVersion = await script("sh", [`${REPO}scripts/install.sh`, `v${VERSION}`], {
      WALSYNC_RELEASE_BASE_URL: `file://${release}`,
      HOME: home,
    });
    if (Deno.build.target === target) {
      assert.equal(byVersion.code, 0, byVersion.stderr);
      assert.ok((await Deno.stat(`${home}/.local/bin/walsync`)).isFile);
    }

    // A version that is not in SHA256SUMS, and a target without an archive: clear errors.
    const missing = await script("sh", [`${REPO}scripts/install.sh`, "9.9.9"], {
      WALSYNC_RELEASE_BASE_URL: server.url,
      WALSYNC_INSTALL_DIR: `${tmp}/none`,
      WALSYNC_TARGET: target,
    });
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /lists no walsync-9\.9\.9-x86_64-unknown-linux-gnu\.tar\.gz/);
    const windows = await script("sh", [`${REPO}scripts/install.sh`], {
      WALSYNC_RELEASE_BASE_URL: server.url,
      WALSYNC_INSTALL_DIR: `${tmp}/none`,
      WALSYNC_TARGET: "aarch64-unknown-linux-gnu",
    });
    assert.notEqual(windows.code, 0);
    assert.match(windows.stderr, /aarch64-unknown-linux-gnu/);
    await assert.rejects(Deno.stat(`${tmp}/none`), Deno.errors.NotFound);
  } finally {
    await server.close();
  }
  await cleanup(tmp);
});

Deno.test("install.sh refuses an archive whose SHA-256 does not match SHA256SUMS and installs nothing", async () => {
  const tmp = await tempDir();
  const release = `${tmp}/release`;
  await Deno.mkdir(release);
  const { target, asset } = await fakeRelease(release);
  // The archive is replaced after SHA256SUMS was written (a tampered or truncated download).
  const data = await Deno.readFile(`${release}/${asset}`);
  await Deno.writeFile(`${release}/${asset}`, data.subarray(0, data.length - 10));
  const dir = `${tmp}/bin`;
  await Deno.mkdir(dir);
  await Deno.writeTextFile(`${dir}/walsync`, "the previous install\n", { mode: 0o755 });
  const server = await serve(release);
  try {
    for (const base of [server.url, `file://${release}`]) {
      const run = await script("sh", [`${REPO}scripts/install.sh`], {
        WALSYNC_RELEASE_BASE_URL: base,
        WALSYNC_INSTALL_DIR: dir,
        WALSYNC_TARGET: target,
      });
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, new RegExp(`checksum mismatch for ${asset.replaceAll(".", "\\.")}`));
      assert.match(run.stderr, /nothing was installed/);
      assert.equal(await Deno.readTextFile(`${dir}/walsync`), "the previous install\n");
      assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["walsync"]);
    }
  } finally {
    await server.close();
  }
  await cleanup(tmp);
});

Deno.test("the release smoke test passes with a working walsync and fails on a wrong version", async () => {
  const ok = await script("bash", [`${REPO}scripts/smoke-test.sh`, LAUNCHER, VERSION]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /smoke-test: ok/);
  const wrong = await script("bash", [`${REPO}scripts/smoke-test.sh`, LAUNCHER, "0.0.0-nope"]);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /expected version 0\.0\.0-nope/);
});

Deno.test("release notes come from CHANGELOG.md's section of the version", async () => {
  const notes = await script("bash", [`${REPO}scripts/release-notes.sh`, VERSION]);
  assert.equal(notes.code, 0, notes.stderr);
  assert.match(notes.stdout, /^\S/, "no leading blank line");
  assert.doesNotMatch(notes.stdout, /^## /m, "only the version's own section");
  const missing = await script("bash", [`${REPO}scripts/release-notes.sh`, "99.0.0"]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no entry for 99\.0\.0/);
});

for (const label of ["file", "s3"] as const) {
  Deno.test(`[${label}] CI restore recipe: restores with --if-replica-exists, checks, fails on exit codes >= 3`, async () => {
    const backend = await freshBackend(label);
    const tmp = await tempDir();
    const db = `${tmp}/app.db`;
    await writer("fill", db, "100");
    const snap = await walsync(["snapshot", db, "-b", backend.url, "--json"], { env: backend.env });
    assert.equal(snap.code, 0, snap.stderr);
    const env = { ...backend.env, WALSYNC: LAUNCHER, WALSYNC_BACKUP_URL: backend.url };
    const recipe = `${REPO}scripts/ci-restore-check.sh`;

    const ok = await script("bash", [recipe, "app"], env);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /restored app as of \d{4}-.*generation 1/);
    const count = await script("bash", [
      recipe,
      "app",
      "sh",
      "-c",
      'test "$(sqlite3 "$RESTORED_DB" "SELECT count(*) FROM t")" = 100',
    ], env);
    assert.equal(count.code, 0, count.stderr); // env: the check sees RESTORED_DB
    const badCheck = await script("bash", [recipe, "app", "sh", "-c", "exit 3"], env);
    assert.equal(badCheck.code, 10, badCheck.stderr);

    const none = await script("bash", [recipe, "never-backed-up"], env);
    assert.equal(none.code, 0, none.stderr);
    assert.match(none.stdout, /has no backup yet/);

    if (label === "s3") {
      const unusable = { ...env, WALSYNC_BACKUP_URL: `s3://no-such-bucket-walsync-ci/x` };
      const store = await script("bash", [recipe, "app"], unusable);
      assert.equal(store.code, 5, store.stderr);
      assert.match(store.stderr, /the store could not be used/);
    }

    // A damaged backup: exit 4 from restore, and the job fails with it.
    const key = JSON.parse(snap.stdout).key as string;
    if (label === "file") {
      await Deno.truncate(`${backend.dir}/${key}`, 1000);
    } else {
      await Deno.writeTextFile(`${tmp}/short`, "x".repeat(1000));
      const put = await sh("aws", [
        "--endpoint-url",
        backend.env.AWS_ENDPOINT_URL_S3,
        "s3",
        "cp",
        `${tmp}/short`,
        `s3://${backend.bucket}/${backend.prefix}/${key}`,
      ], { env: { ...backend.env, AWS_DEFAULT_REGION: "us-east-1" } });
      assert.equal(put.code, 0, put.stderr);
    }
    const damaged = await script("bash", [recipe, "app"], env);
    assert.equal(damaged.code, 4, damaged.stderr);
    assert.match(damaged.stderr, /verification failed/);
    await cleanup(backend, tmp);
  });
}

Deno.test("actionlint (scripts/actionlint.ts) passes the workflows and catches a broken one", async () => {
  const lint = (...files: string[]) =>
    sh(Deno.execPath(), ["run", "--frozen", "--allow-read", `${REPO}scripts/actionlint.ts`, ...files], {
      cwd: REPO,
    });
  const ok = await lint();
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /0 problem\(s\)/);

  const tmp = await tempDir();
  const bad = `${tmp}/bad.yml`;
  await Deno.writeTextFile(
    bad,
    [
      "on: push",
      "jobs:",
      "  a:",
      "    runs-on: ubuntu-22.04-arm", // newer than the linter: accepted
      "    steps:",
      "      - run: echo ${{ matrix.nope }}",
      "  b:",
      "    runs-on: macos-99", // not a runner: reported
      "    steps:",
      "      - run: echo ok",
    ].join("\n") + "\n",
  );
  const run = await lint(bad);
  assert.equal(run.code, 1);
  assert.match(run.stdout, /property "nope" is not defined/);
  assert.match(run.stdout, /label "macos-99" is unknown/);
  assert.doesNotMatch(run.stdout, /ubuntu-22\.04-arm/);
  await cleanup(tmp);
});
