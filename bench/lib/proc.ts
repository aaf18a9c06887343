/**
 * Running programs for the benchmarks: one-shot commands, commands timed by `/usr/bin/time`,
 * long-running children (walsync watch, writers) whose stderr is kept in a log file, and readings
 * of a process's memory and CPU from /proc.
 * @module
 */
import { fileURLToPath } from "node:url";

/** This checkout's main.ts. */
export const MAIN = fileURLToPath(new URL("../../main.ts", import.meta.url));
/** This checkout's root directory (with a trailing slash). */
export const REPO = fileURLToPath(new URL("../../", import.meta.url));

const decoder = new TextDecoder();

/** Arguments that run walsync from this checkout with the current Deno. */
export function walsyncArgs(args: string[]): string[] {
  return ["run", "-A", "--quiet", "--frozen", MAIN, ...args];
}

/** Runs a program; throws with its stderr unless it exits 0; returns stdout. */
export async function run(
  cmd: string,
  args: string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): Promise<string> {
  const out = await new Deno.Command(cmd, { args, ...options, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ").slice(0, 200)} failed (${out.code}): ${lastLines(out.stderr)}`);
  }
  return decoder.decode(out.stdout);
}

function lastLines(bytes: Uint8Array, n = 5): string {
  return decoder.decode(bytes).trim().split("\n").slice(-n).join("\n");
}

/** The outcome of a command run under `/usr/bin/time`. */
export interface Timed {
  ok: boolean;
  stdout: string;
  /** The last lines of stderr when the command failed. */
  error?: string;
  /** Peak resident set size, MB (10^6 bytes). */
  peakRssMB: number;
  /** Wall-clock seconds. */
  seconds: number;
}

/**
 * Runs a program under `/usr/bin/time`; returns its stdout, peak RSS and wall time. A failure is
 * returned (ok false), not thrown, so that the other measurements still run.
 */
export async function timed(cmd: string, args: string[], env?: Record<string, string>): Promise<Timed> {
  const timeFile = await Deno.makeTempFile({ prefix: "walsync-bench-time-" });
  try {
    const out = await new Deno.Command("/usr/bin/time", {
      args: ["-f", "%M %e", "-o", timeFile, cmd, ...args],
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    // On failure time(1) writes "Command exited with non-zero status N" before the format line.
    const [kib, seconds] = (await Deno.readTextFile(timeFile)).trim().split(/\s+/).slice(-2).map(Number);
    return {
      ok: out.success,
      stdout: decoder.decode(out.stdout),
      error: out.success ? undefined : lastLines(out.stderr),
      peakRssMB: kib * 1024 / 1e6,
      seconds,
    };
  } finally {
    await Deno.remove(timeFile);
  }
}

/** Runs `walsync ARGS` under `/usr/bin/time`. */
export function timedWalsync(args: string[], env?: Record<string, string>): Promise<Timed> {
  return timed(Deno.execPath(), walsyncArgs(args), env);
}

/** Every child still running, so that an interrupted run can stop them. */
const running = new Set<Child>();

/**
 * A long-running child process. Its stderr (and stdout unless captured) is appended to a log file
 * and scanned line by line, so that the caller can wait for a line (e.g. walsync's "watching").
 */
export class Child {
  readonly pid: number;
  readonly #process: Deno.ChildProcess;
  readonly #lines: string[] = [];
  #waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  #status: Deno.CommandStatus | null = null;
  readonly done: Promise<Deno.CommandStatus>;
  /** Captured stdout (only with `captureStdout`). */
  stdout = "";

  constructor(
    readonly name: string,
    cmd: string,
    args: string[],
    readonly logFile: string,
    options: { env?: Record<string, string>; captureStdout?: boolean; cwd?: string } = {},
  ) {
    const process = new Deno.Command(cmd, {
      args,
      env: options.env,
      cwd: options.cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#process = process;
    this.pid = process.pid;
    running.add(this);
    const log = Deno.openSync(logFile, { append: true, create: true });
    const pumps = [
      this.#pump(process.stderr, log),
      options.captureStdout
        ? new Response(process.stdout).text().then((t) => void (this.stdout = t))
        : this.#pump(process.stdout, log),
    ];
    this.done = (async () => {
      const status = await process.status;
      await Promise.all(pumps);
      log.close();
      this.#status = status;
      running.delete(this);
      return status;
    })();
  }

  async #pump(stream: ReadableStream<Uint8Array>, log: Deno.FsFile): Promise<void> {
    let partial = "";
    for await (const chunk of stream) {
      await log.write(chunk);
      const text = partial + decoder.decode(chunk, { stream: true });
      const lines = text.split("\n");
      partial = lines.pop()!;
      for (const line of lines) this.#onLine(line);
    }
  }

  #onLine(line: string): void {
    this.#lines.push(line);
    if (this.#lines.length > 2000) this.#lines.splice(0, 1000);
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.pattern.test(line)) return true;
      w.resolve(line);
      return false;
    });
  }

  /** True while the process runs. */
  get alive(): boolean {
    return this.#status === null;
  }

  /** Lines of output seen so far matching `pattern`. */
  linesMatching(pattern: RegExp): string[] {
    return this.#lines.filter((l) => pattern.test(l));
  }

  /** Waits for a line matching `pattern` (earlier lines count); throws on timeout or exit. */
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<string> {
    const seen = this.#lines.find((l) => pattern.test(l));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => fail(`no line matching ${pattern} within ${timeoutMs} ms`), timeoutMs);
      const fail = (why: string) => {
        clearTimeout(timer);
        this.#waiters = this.#waiters.filter((w) => w.resolve !== done);
        reject(new Error(`${this.name}: ${why} (log: ${this.logFile})`));
      };
      const done = (line: string) => {
        clearTimeout(timer);
        resolve(line);
      };
      this.#waiters.push({ pattern, resolve: done });
      this.done.then((s) => fail(`exited with code ${s.code} before printing ${pattern}`));
    });
  }

  /** Sends `signal` and waits for the exit (SIGKILL after `graceMs`); returns the exit code. */
  async stop(signal: Deno.Signal = "SIGTERM", graceMs = 60_000): Promise<number> {
    if (this.alive) {
      try {
        this.#process.kill(signal);
      } catch { /* already gone */ }
      const timer = setTimeout(() => {
        try {
          this.#process.kill("SIGKILL");
        } catch { /* already gone */ }
      }, graceMs);
      await this.done;
      clearTimeout(timer);
    }
    return (await this.done).code;
  }
}

/** Starts `walsync ARGS` as a child, logging to `logFile`. */
export function spawnWalsync(name: string, args: string[], logFile: string): Child {
  return new Child(name, Deno.execPath(), walsyncArgs(args), logFile);
}

/** Kills every child still running (used when the run is interrupted or fails). */
export async function stopAllChildren(): Promise<void> {
  await Promise.all([...running].map((c) => c.stop("SIGKILL", 1000)));
}

/** Memory figures of a process from /proc/<pid>/status, in MB (10^6 bytes). */
export interface MemoryStatus {
  rss: number;
  /** Peak RSS (VmHWM). */
  hwm: number;
  anon: number;
  file: number;
  shmem: number;
}

/** Reads /proc/<pid>/status; null if the process is gone. */
export function memoryStatus(pid: number): MemoryStatus | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/status`);
  } catch {
    return null;
  }
  const field = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text);
    return m ? Number(m[1]) * 1024 / 1e6 : NaN;
  };
  return {
    rss: field("VmRSS"),
    hwm: field("VmHWM"),
    anon: field("RssAnon"),
    file: field("RssFile"),
    shmem: field("RssShmem"),
  };
}

/** Samples the RSS of `pid` every 0.5 s for `seconds`. */
export async function sampleRss(pid: number, seconds: number): Promise<MemoryStatus[]> {
  const samples: MemoryStatus[] = [];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    const m = memoryStatus(pid);
    if (m) samples.push(m);
    await sleep(500);
  }
  return samples;
}

/** The machine's load averages over 1, 5 and 15 minutes (/proc/loadavg). */
export function loadAverage(): [number, number, number] {
  const [a, b, c] = Deno.readTextFileSync("/proc/loadavg").split(" ").map(Number);
  return [a, b, c];
}

let clockTicks: number | null = null;

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  clockTicks ??= Number(
    new TextDecoder().decode(new Deno.Command("getconf", { args: ["CLK_TCK"] }).outputSync().stdout),
  );
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // Fields after the command name (which is in parentheses and may contain spaces).
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / clockTicks;
}

/** Number of open file descriptors of a process. */
export function openFds(pid: number): number {
  let n = 0;
  for (const _ of Deno.readDirSync(`/proc/${pid}/fd`)) n++;
  return n;
}

/** Bytes a process has passed to write(2)-like calls so far (`wchar` of /proc/<pid>/io). */
export function bytesWritten(pid: number): number {
  const m = /^wchar:\s+(\d+)/m.exec(Deno.readTextFileSync(`/proc/${pid}/io`));
  if (!m) throw new Error(`no wchar in /proc/${pid}/io`);
  return Number(m[1]);
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Wall-clock time in milliseconds with sub-millisecond precision (comparable with Python's time.time()). */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}
