/**
 * Test helpers: run the real CLI as a subprocess, make backup locations on the real S3 server
 * (Ceph RGW started by scripts/test.sh, or any endpoint in the environment) and in temporary
 * directories, and drive independent SQLite writers (Python, sqlite3 CLI).
 */
import { fileURLToPath } from "node:url";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";

export const REPO = fileURLToPath(new URL("..", import.meta.url));
export const MAIN = `${REPO}main.ts`;
export const WRITER = `${REPO}tests/fixtures/writer.py`;

/** The result of running a command. */
export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `walsync ARGS` as a separate process (deno run -A main.ts). */
export async function walsync(
  args: string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): Promise<Run> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, ...args],
    env: { NO_COLOR: "1", ...options.env },
    cwd: options.cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const result = {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
  logOutput(args, result);
  return result;
}

/** Every output of the CLI in the suite is appended here (for the secret-leak check). */
export const OUTPUT_LOG = Deno.env.get("WALSYNC_TEST_OUTPUT_LOG");

function logOutput(args: string[], run: Run): void {
  if (!OUTPUT_LOG) return;
  Deno.writeTextFileSync(OUTPUT_LOG, `$ walsync ${args.join(" ")}\n${run.stdout}${run.stderr}\n`, {
    append: true,
  });
}

/** Runs any program; returns its output. */
export async function sh(
  cmd: string,
  args: string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): Promise<Run> {
  const out = await new Deno.Command(cmd, {
    args,
    env: options.env,
    cwd: options.cwd,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

/** Runs a program and throws unless it exits 0; returns stdout. */
export async function mustRun(
  cmd: string,
  args: string[],
  options: { env?: Record<string, string> } = {},
): Promise<string> {
  const r = await sh(cmd, args, options);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/** Runs the test writer (tests/fixtures/writer.py). */
export function writer(...args: string[]): Promise<string> {
  return mustRun("python3", [WRITER, ...args]);
}

/** Runs SQL through the sqlite3 CLI (a separate process). */
export function sqlite3(db: string, sql: string): Promise<string> {
  return mustRun("sqlite3", [db, sql]);
}

/** SHA-256 of a file, hex. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of (await Deno.open(path)).readable) hash.update(chunk);
  return hash.digest("hex");
}

/** Asserts two files are byte-for-byte identical (same length, same bytes). */
export async function filesEqual(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([Deno.readFile(a), Deno.readFile(b)]);
  return Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(y); // memcmp: fast on big files
}

/** A fresh temporary directory, removed by the returned disposer. */
export async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "walsync-test-" });
}

/** S3 settings for tests: from the environment set by scripts/test.sh (or by the user). */
export function s3Settings(): { endpoint: string; bucket: string; env: Record<string, string> } {
  const endpoint = Deno.env.get("WALSYNC_TEST_S3_ENDPOINT");
  if (!endpoint) {
    throw new Error(
      "WALSYNC_TEST_S3_ENDPOINT is not set: run the suite with scripts/test.sh (it starts Ceph RGW)",
    );
  }
  const env: Record<string, string> = {
    AWS_ACCESS_KEY_ID: Deno.env.get("AWS_ACCESS_KEY_ID") ?? "",
    AWS_SECRET_ACCESS_KEY: Deno.env.get("AWS_SECRET_ACCESS_KEY") ?? "",
    AWS_ENDPOINT_URL_S3: endpoint,
    AWS_REGION: Deno.env.get("AWS_REGION") ?? "us-east-1",
  };
  return { endpoint, bucket: Deno.env.get("WALSYNC_TEST_BUCKET") ?? "walsync-test", env };
}

/** A backup location to test against. */
export interface Backend {
  label: "s3" | "file";
  url: string;
  /** Environment for the CLI (S3 credentials and endpoint). */
  env: Record<string, string>;
  /** For s3: the bucket and key prefix; for file: the directory. */
  bucket?: string;
  prefix?: string;
  dir?: string;
}

/** A fresh, empty backup location: a random prefix in the test bucket, or a new temporary directory. */
export async function freshBackend(label: "s3" | "file"): Promise<Backend> {
  if (label === "s3") {
    const s3 = s3Settings();
    const prefix = `t-${crypto.randomUUID().slice(0, 12)}`;
    return { label, url: `s3://${s3.bucket}/${prefix}`, env: s3.env, bucket: s3.bucket, prefix };
  }
  const dir = `${await tempDir()}/backups`;
  return { label, url: `file://${dir}`, env: {}, dir };
}

/** Runs the aws CLI (an independent S3 client) against the test endpoint. */
export async function aws(args: string[]): Promise<string> {
  const s3 = s3Settings();
  return await mustRun("aws", ["--endpoint-url", s3.endpoint, ...args], {
    env: { ...s3.env, AWS_DEFAULT_REGION: s3.env.AWS_REGION, AWS_PAGER: "" },
  });
}

/** Keys of all objects under a backend (through the aws CLI for S3, the file system for file://). */
export async function listKeys(backend: Backend): Promise<string[]> {
  if (backend.label === "s3") {
    const out = await aws([
      "s3api",
      "list-objects-v2",
      "--bucket",
      backend.bucket!,
      "--prefix",
      backend.prefix + "/",
    ]);
    if (!out.trim()) return [];
    return (JSON.parse(out).Contents ?? []).map((o: { Key: string }) =>
      o.Key.slice(backend.prefix!.length + 1)
    ).sort();
  }
  const keys: string[] = [];
  const walk = async (dir: string, rel: string) => {
    try {
      for await (const e of Deno.readDir(dir)) {
        if (e.isDirectory) await walk(`${dir}/${e.name}`, `${rel}${e.name}/`);
        else keys.push(`${rel}${e.name}`);
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  };
  await walk(backend.dir!, "");
  return keys.sort();
}

/** Keys and sizes of all objects under a backend (sidecars and temporary files excluded for file://). */
export async function listObjects(backend: Backend): Promise<{ key: string; size: number }[]> {
  if (backend.label === "s3") {
    const out = await aws([
      "s3api",
      "list-objects-v2",
      "--bucket",
      backend.bucket!,
      "--prefix",
      backend.prefix + "/",
    ]);
    if (!out.trim()) return [];
    return (JSON.parse(out).Contents ?? []).map((o: { Key: string; Size: number }) => ({
      key: o.Key.slice(backend.prefix!.length + 1),
      size: o.Size,
    })).sort((a: { key: string }, b: { key: string }) => (a.key < b.key ? -1 : 1));
  }
  const objects: { key: string; size: number }[] = [];
  for (const key of await listKeys(backend)) {
    if (key.endsWith(".meta.json") || key.includes(".tmp-")) continue;
    try {
      objects.push({ key, size: (await Deno.stat(`${backend.dir}/${key}`)).size });
    } catch (e) {
      // Deleted since it was listed (a running watch compacts and prunes): as an S3 listing would.
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  return objects;
}

/** Downloads an object to a local file, through an independent path (aws CLI or a plain copy). */
export async function fetchObject(backend: Backend, key: string, to: string): Promise<void> {
  if (backend.label === "s3") {
    await aws(["s3api", "get-object", "--bucket", backend.bucket!, "--key", `${backend.prefix}/${key}`, to]);
  } else await Deno.copyFile(`${backend.dir}/${key}`, to);
}

/** User metadata of an object as a second client sees it (aws s3api head-object, or the sidecar). */
export async function objectMetadata(backend: Backend, key: string): Promise<Record<string, string>> {
  if (backend.label === "s3") {
    return JSON.parse(
      await aws(["s3api", "head-object", "--bucket", backend.bucket!, "--key", `${backend.prefix}/${key}`]),
    )
      .Metadata;
  }
  return JSON.parse(await Deno.readTextFile(`${backend.dir}/${key}.meta.json`)).metadata;
}

/** Replaces an object's content, keeping its metadata (to inject corruption). */
export async function replaceObject(backend: Backend, key: string, from: string): Promise<void> {
  if (backend.label === "s3") {
    const meta = await objectMetadata(backend, key);
    await aws([
      "s3api",
      "put-object",
      "--bucket",
      backend.bucket!,
      "--key",
      `${backend.prefix}/${key}`,
      "--body",
      from,
      "--metadata",
      JSON.stringify(meta),
    ]);
  } else {
    await Deno.copyFile(from, `${backend.dir}/${key}`);
  }
}

/** Flips one byte of a local file at `offset`. */
export async function flipByte(path: string, offset: number): Promise<void> {
  const file = await Deno.open(path, { read: true, write: true });
  const b = new Uint8Array(1);
  await file.seek(offset, Deno.SeekMode.Start);
  await file.read(b);
  b[0] ^= 0xff;
  await file.seek(offset, Deno.SeekMode.Start);
  await file.write(b);
  file.close();
}

/** Files in a directory (to check that nothing was left behind). */
export async function filesIn(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

/** A running `walsync watch` process. */
export interface WatchProcess {
  child: Deno.ChildProcess;
  /** Everything it has written to stderr so far. */
  stderr(): string;
  /** True once the process has exited. */
  exited(): boolean;
  /** Waits until stderr matches `pattern` (returns true), the process exits or `timeoutMs` passes (false). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<boolean>;
  /** How many times `pattern` occurs in stderr so far. */
  count(pattern: RegExp): number;
  /** Waits until `pattern` occurs at least `n` times in stderr (true), or the process exits or time is up (false). */
  waitForCount(pattern: RegExp, n: number, timeoutMs?: number): Promise<boolean>;
  /** Sends a signal and waits for the exit; returns the exit code and the full stderr. */
  stop(signal?: Deno.Signal): Promise<{ code: number; signal: Deno.Signal | null; stderr: string }>;
}

/** Starts `walsync watch ARGS` without waiting for anything. */
export function spawnWatch(args: string[], env: Record<string, string> = {}): WatchProcess {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, "watch", ...args],
    env: { NO_COLOR: "1", ...env },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let text = "";
  const reading = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) text += chunk;
  })();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  return {
    child,
    stderr: () => text,
    exited: () => exited,
    async waitFor(pattern: RegExp, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(text) && !exited && Date.now() < deadline) await sleep(10);
      return pattern.test(text);
    },
    count(pattern: RegExp) {
      return text.match(new RegExp(pattern.source, "g"))?.length ?? 0;
    },
    async waitForCount(pattern: RegExp, n: number, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (this.count(pattern) < n && !exited && Date.now() < deadline) await sleep(10);
      return this.count(pattern) >= n;
    },
    async stop(signal: Deno.Signal = "SIGINT") {
      if (!exited) {
        try {
          child.kill(signal);
        } catch { /* already gone */ }
      }
      const s = await status;
      await reading;
      if (OUTPUT_LOG) {
        Deno.writeTextFileSync(OUTPUT_LOG, `$ walsync watch ${args.join(" ")}\n${text}\n`, { append: true });
      }
      return { code: s.code, signal: s.signal, stderr: text };
    },
  };
}

/** Starts `walsync watch ARGS` and waits until it reports that it is watching (or exits). */
export async function startWatch(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<WatchProcess> {
  const proc = spawnWatch(args, env);
  if (!(await proc.waitFor(/watching \d+ database/, timeoutMs))) {
    const { stderr } = await proc.stop("SIGKILL");
    throw new Error(`watch did not start: ${stderr}`);
  }
  return proc;
}

/** A running helper process (e.g. a writer) whose stdout lines are collected as they come. */
export interface LineProcess {
  child: Deno.ChildProcess;
  /** The complete lines printed so far. */
  lines: string[];
  /** Resolves with the exit status once the process has exited and its output was read. */
  done: Promise<Deno.CommandStatus>;
  /** Waits until a line matches `pattern`; throws if the process exits or `timeoutMs` passes first. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
}

/** Starts `cmd ARGS`, collecting its stdout line by line (stderr is kept for error messages). */
export function spawnLines(cmd: string, args: string[]): LineProcess {
  const child = new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).spawn();
  const lines: string[] = [];
  let exited = false;
  let errors = "";
  const readErr = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) errors += chunk;
  })();
  const readOut = (async () => {
    let buffer = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      const parts = buffer.split("\n");
      buffer = parts.pop()!;
      lines.push(...parts);
    }
  })();
  const done = (async () => {
    const status = await child.status;
    await Promise.all([readOut, readErr]);
    exited = true;
    return status;
  })();
  return {
    child,
    lines,
    done,
    async waitForLine(pattern: RegExp, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const line = lines.find((l) => pattern.test(l));
        if (line !== undefined) return line;
        if (exited) throw new Error(`${cmd} ${args.join(" ")} exited without printing ${pattern}: ${errors}`);
        await sleep(10);
      }
      throw new Error(`${cmd} ${args.join(" ")} did not print ${pattern} within ${timeoutMs} ms`);
    },
  };
}

/** `walsync list --json` as parsed objects (throws if it fails). */
export async function listJson(backend: Backend): Promise<ListedDatabase[]> {
  const r = await walsync(["list", "-b", backend.url, "--json"], { env: backend.env });
  if (r.code !== 0) throw new Error(`list failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** What `list --json` prints for one database (the fields the tests use). */
export interface ListedDatabase {
  name: string;
  generation: number | null;
  restorableFrom: string | null;
  restorableTo: string | null;
  generations: {
    generation: number;
    snapshots: number;
    segments: number;
    restorableFrom: string | null;
    restorableTo: string | null;
  }[];
}

/** `walsync restore NAME -o OUT [EXTRA...]` against a backend. */
export function restore(backend: Backend, name: string, out: string, ...extra: string[]): Promise<Run> {
  return walsync(["restore", name, "-o", out, "-b", backend.url, ...extra], { env: backend.env });
}

/**
 * Restores `name` (latest, or as EXTRA options say) into `out` and returns the writer's verdict on
 * it: "ok K" (committed state K of tests/fixtures/writer.py) or "bad ...". Throws if restore fails.
 */
export async function restoredState(
  backend: Backend,
  name: string,
  out: string,
  ...extra: string[]
): Promise<string> {
  const r = await restore(backend, name, out, "--force", ...extra);
  if (r.code !== 0) throw new Error(`restore ${name} ${extra.join(" ")} failed (${r.code}): ${r.stderr}`);
  return (await writer("check", out)).trim();
}

/** Restores `name` again and again until it is in state `expected` ("ok K"); throws after `timeoutMs`. */
export async function waitForState(
  backend: Backend,
  name: string,
  out: string,
  expected: string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let got = "";
  while (Date.now() < deadline) {
    try {
      got = await restoredState(backend, name, out);
      if (got === expected) return;
    } catch (e) {
      got = (e as Error).message; // e.g. no snapshot yet
    }
    await sleep(200);
  }
  throw new Error(`${name} never reached "${expected}" in the backup within ${timeoutMs} ms (last: ${got})`);
}

/** A TCP proxy in front of the S3 server that lets a test act at a chosen point of an HTTP exchange. */
export interface S3Proxy {
  /** The endpoint to give walsync (`--endpoint`). */
  endpoint: string;
  close(): void;
}

/**
 * Starts a TCP proxy to `target` (http://host:port). `onRequest(method, path)` is called right after
 * the first bytes of each request (its request line and headers, maybe part of its body) were
 * forwarded; `onResponse(method, path, status)` is called when a response arrives from the server,
 * before it is forwarded. A hook returning true cuts that connection at once (nothing more is
 * forwarded either way). SigV4 signs the Host header as the client sent it, so the proxy is
 * transparent to the server.
 */
export function startS3Proxy(
  target: string,
  hooks: {
    onRequest?: (method: string, path: string) => boolean | void;
    onResponse?: (method: string, path: string, status: number) => boolean | void;
  },
): S3Proxy {
  const url = new URL(target);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const latin1 = new TextDecoder("latin1");
  const serve = async (client: Deno.Conn) => {
    let server: Deno.Conn;
    try {
      server = await Deno.connect({ hostname: url.hostname, port: Number(url.port || 80) });
    } catch {
      client.close();
      return;
    }
    conns.add(client);
    conns.add(server);
    const pending: [string, string][] = [];
    let cut = false;
    const closeBoth = () => {
      cut = true;
      for (const c of [client, server]) {
        try {
          c.close();
        } catch { /* closed */ }
        conns.delete(c);
      }
    };
    const pump = async (from: Deno.Conn, to: Deno.Conn, toServer: boolean) => {
      const buffer = new Uint8Array(64 * 1024);
      try {
        while (!cut) {
          const n = await from.read(buffer);
          if (n === null) break;
          const chunk = buffer.subarray(0, n);
          const text = latin1.decode(chunk.subarray(0, Math.min(n, 4096)));
          if (toServer) {
            const requests = [...text.matchAll(/(?:^|\r\n)([A-Z]+) (\/\S*) HTTP\/1\.1\r\n/g)];
            for (let off = 0; off < n;) off += await to.write(chunk.subarray(off));
            for (const [, method, path] of requests) {
              pending.push([method, decodeURIComponent(path.split("?")[0])]);
              if (hooks.onRequest?.(method, decodeURIComponent(path.split("?")[0]))) return closeBoth();
            }
          } else {
            const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
            if (m) {
              const [method, path] = pending.shift() ?? ["?", "?"];
              if (hooks.onResponse?.(method, path, Number(m[1]))) return closeBoth();
            }
            for (let off = 0; off < n;) off += await to.write(chunk.subarray(off));
          }
        }
      } catch { /* a side went away */ }
      closeBoth();
    };
    await Promise.all([pump(client, server, true), pump(server, client, false)]);
  };
  (async () => {
    try {
      for await (const conn of listener) serve(conn);
    } catch { /* closed */ }
  })();
  return {
    endpoint: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    close() {
      try {
        listener.close();
      } catch { /* closed */ }
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      conns.clear();
    },
  };
}

/**
 * Removes what a passing test leaves on the local disk: temporary directories and file://
 * backends (S3 test prefixes are removed by scripts/test.sh). Failing tests skip this, so their
 * files stay for inspection.
 */
export async function cleanup(...items: (Backend | string)[]): Promise<void> {
  for (const item of items) {
    const path = typeof item === "string" ? item : item.dir?.replace(/\/backups$/, "");
    if (path) await Deno.remove(path, { recursive: true }).catch(() => {});
  }
}

/** Waits `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The time (ms since the epoch) encoded in a snapshot or segment key. */
export function keyTime(key: string): number {
  const m = /-(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{3})\.(db|wal)$/.exec(key);
  if (!m) throw new Error(`not a snapshot or segment key: ${key}`);
  const [y, mo, d, h, mi, s, ms] = m.slice(1, 8).map(Number);
  return Date.UTC(y, mo - 1, d, h, mi, s, ms);
}

/** Copies every object of `backend` (with its metadata) to a fresh backend of the same kind. */
export async function cloneBackend(backend: Backend): Promise<Backend> {
  const copy = await freshBackend(backend.label);
  if (backend.label === "s3") {
    await aws([
      "s3",
      "cp",
      "--recursive",
      "--only-show-errors",
      `s3://${backend.bucket}/${backend.prefix}/`,
      `s3://${copy.bucket}/${copy.prefix}/`,
    ]);
  } else {
    await mustRun("cp", ["-a", backend.dir!, copy.dir!]);
  }
  return copy;
}

/** Deletes one object (for file://, with its metadata sidecar), behind walsync's back. */
export async function deleteObject(backend: Backend, key: string): Promise<void> {
  if (backend.label === "s3") {
    await aws(["s3api", "delete-object", "--bucket", backend.bucket!, "--key", `${backend.prefix}/${key}`]);
  } else {
    await Deno.remove(`${backend.dir}/${key}`);
    await Deno.remove(`${backend.dir}/${key}.meta.json`).catch(() => {});
  }
}

/** Damages an object in place, keeping its metadata: flips its middle byte, or cuts it to half its size. */
export async function damageObject(backend: Backend, key: string, how: "flip" | "truncate"): Promise<void> {
  const local = `${await tempDir()}/object`;
  await fetchObject(backend, key, local);
  const size = (await Deno.stat(local)).size;
  if (how === "flip") await flipByte(local, Math.floor(size / 2));
  else await Deno.truncate(local, Math.floor(size / 2));
  await replaceObject(backend, key, local);
}

/** Stores an object that walsync did not write (no walsync metadata), e.g. an unknown key. */
export async function putForeignObject(backend: Backend, key: string, content: string): Promise<void> {
  const local = `${await tempDir()}/object`;
  await Deno.writeTextFile(local, content);
  if (backend.label === "s3") {
    await aws([
      "s3api",
      "put-object",
      "--bucket",
      backend.bucket!,
      "--key",
      `${backend.prefix}/${key}`,
      "--body",
      local,
    ]);
  } else {
    await Deno.mkdir(`${backend.dir}/${key}`.replace(/\/[^/]+$/, ""), { recursive: true });
    await Deno.copyFile(local, `${backend.dir}/${key}`);
  }
}

/** Keys and sizes of every object, plus (for file://) sidecars and modification times: to show nothing changed. */
export async function storeFingerprint(backend: Backend): Promise<string> {
  if (backend.label === "s3") {
    const out = await aws([
      "s3api",
      "list-objects-v2",
      "--bucket",
      backend.bucket!,
      "--prefix",
      backend.prefix + "/",
    ]);
    const contents = out.trim() ? JSON.parse(out).Contents ?? [] : [];
    return JSON.stringify(
      contents.map((
        o: { Key: string; Size: number; ETag: string; LastModified: string },
      ) => [o.Key, o.Size, o.ETag, o.LastModified]),
    );
  }
  return await mustRun("find", [backend.dir!, "-printf", "%P %s %T@\\n"]).then((s) =>
    s.split("\n").sort().join("\n")
  );
}

/**
 * A backup written by the real CLI for verify and damage tests, on one backend:
 * generation 1 from `walsync watch` (its starting snapshot, WAL segments across several WAL restarts,
 * scheduled snapshots in the middle, then, after a restart of watch that continues the generation,
 * only segments; state.json), and generation 2 from a one-shot `walsync snapshot` taken while watch
 * was running, so that generation 1 covers its time too.
 * The writes come from a separate writer process (tests/fixtures/writer.py).
 */
export interface WatchedBackup {
  backend: Backend;
  dir: string;
  db: string;
  name: string;
  /** Generation 1: its snapshots and segments (keys, time order), and all its objects in replay order. */
  snapshots: string[];
  segments: string[];
  objects: string[];
  /** Generation 2's only snapshot (the one-shot one). */
  oneShot: string;
}

/** Builds a {@link WatchedBackup} (about 10 s). */
export async function makeWatchedBackup(label: "s3" | "file"): Promise<WatchedBackup> {
  const backend = await freshBackend(label);
  const dir = await tempDir();
  const name = "app";
  const db = `${dir}/${name}.db`;
  await writer("fill", db, "300");
  const watchArgs = [db, "-b", backend.url, "--sync-interval", "0.2", "--checkpoint-frames", "20"];
  const write = async (transactions: number) => {
    for (let i = 0; i < transactions; i++) {
      await writer("fill", db, "20");
      await sleep(100);
    }
  };
  const generation1 = async () =>
    (await listKeys(backend)).filter((k) => /\/00000001-\d{17}\.(db|wal)$/.test(k));
  // First run: a snapshot every second while there are changes.
  let watch = await startWatch([...watchArgs, "--snapshot-interval", "1"], backend.env);
  const deadline = Date.now() + 30_000;
  do {
    if (Date.now() > deadline) throw new Error("watch took no scheduled snapshot");
    await write(3);
  } while ((await generation1()).filter((k) => k.includes("/snapshots/")).length < 2);
  let stopped = await watch.stop();
  if (stopped.code !== 0) throw new Error(`watch exited ${stopped.code}: ${stopped.stderr}`);
  // Second run: continues generation 1, without scheduled snapshots; a one-shot snapshot meanwhile.
  watch = await startWatch(watchArgs, backend.env);
  if (!/continuing generation 1/.test(watch.stderr())) {
    throw new Error(`watch did not continue: ${watch.stderr()}`);
  }
  await write(3);
  const snap = await walsync(["snapshot", db, "-b", backend.url, "--json"], { env: backend.env });
  if (snap.code !== 0) throw new Error(`one-shot snapshot failed: ${snap.stderr}`);
  const oneShot: string = JSON.parse(snap.stdout).key;
  await write(4);
  await sleep(500);
  stopped = await watch.stop();
  if (stopped.code !== 0) throw new Error(`watch exited ${stopped.code}: ${stopped.stderr}`);
  const objects = (await generation1()).sort((a, b) => keyTime(a) - keyTime(b));
  return {
    backend,
    dir,
    db,
    name,
    snapshots: objects.filter((k) => k.includes("/snapshots/")),
    segments: objects.filter((k) => k.includes("/wal/")),
    objects,
    oneShot,
  };
}

/** Salt-1 of a WAL file's header (changes at every restart of the WAL), or null if there is none. */
export function walSalt1(path: string): number | null {
  try {
    const header = Deno.readFileSync(path).subarray(0, 32);
    return header.byteLength < 32 ? null : new DataView(header.buffer, header.byteOffset, 32).getUint32(16);
  } catch {
    return null;
  }
}
