/**
 * Progress of long transfers (snapshot uploads, restores) on stderr: one line, redrawn in place,
 * with bytes, rate and ETA, cleared at the end. Only when stderr is a terminal, the log format is
 * human and the level shows info (not with --quiet); otherwise nothing at all. The line appears
 * after WALSYNC_PROGRESS_DELAY_MS (default 500 ms), so quick operations do not flicker.
 *
 * The commands call {@link withProgress}, which hands them a store that counts the bytes of what
 * they download and upload.
 * @module
 */
import { formatAge } from "./duration.ts";
import * as log from "./log.ts";
import type { ByteSource } from "./storage/source.ts";
import type { Store } from "./storage/store.ts";

const REDRAW_MS = 200;
const encoder = new TextEncoder();

/** Formats bytes as B, KiB, MiB, GiB. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** The progress line (without control characters): `label: done / total (p%), rate/s, ETA t`. */
export function formatProgress(label: string, done: number, total: number, elapsedMs: number): string {
  const rate = elapsedMs > 0 ? (done * 1000) / elapsedMs : 0;
  const percent = total > 0 ? Math.min(100, Math.floor((done * 100) / total)) : 0;
  const left = rate > 0 && total > done ? Math.ceil((total - done) / rate) : null;
  const eta = left === null ? "" : `, ETA ${formatAge(left)}`;
  return `${label}: ${formatBytes(done)} / ${formatBytes(total)} (${percent}%), ${
    formatBytes(Math.round(rate))
  }/s${eta}`;
}

/** A progress line for one operation; inert when progress is not shown. */
export class Progress {
  #done = 0;
  #drawn = false;
  #drawnAt = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  readonly #started = Date.now();
  /** Start of the current pass over the data (the rate and ETA are per pass). */
  #passStarted = Date.now();
  #phase: string | null = null;
  readonly #delayMs: number;

  /** Bytes the current pass will transfer. */
  total: number;

  constructor(readonly label: string, total: number, readonly enabled: boolean) {
    this.total = total;
    this.#delayMs = Number(Deno.env.get("WALSYNC_PROGRESS_DELAY_MS") ?? 500);
    if (!enabled) return;
    const timer = setInterval(() => this.#draw(), REDRAW_MS);
    Deno.unrefTimer(timer);
    this.#timer = timer;
    log.onBeforeWrite(() => this.#clear());
  }

  /** Bytes transferred so far (can go back when a transfer restarts). */
  set done(bytes: number) {
    this.#done = bytes;
    if (this.enabled && Date.now() - this.#drawnAt >= REDRAW_MS) this.#draw();
  }

  get done(): number {
    return this.#done;
  }

  #draw(): void {
    if (Date.now() - this.#started < this.#delayMs) return;
    const label = this.#phase ? `${this.label} (${this.#phase})` : this.label;
    let line = formatProgress(label, this.#done, this.total, Date.now() - this.#passStarted);
    try {
      const { columns } = Deno.consoleSize();
      if (columns >= 20) line = line.slice(0, columns - 1); // never wrap: \r must return to its start
    } catch { /* no size known: keep it whole */ }
    Deno.stderr.writeSync(encoder.encode(`\r${line}\x1b[K`));
    this.#drawn = true;
    this.#drawnAt = Date.now();
  }

  #clear(): void {
    if (this.#drawn) Deno.stderr.writeSync(encoder.encode("\r\x1b[2K"));
    this.#drawn = false;
  }

  /** Starts a new pass of `total` bytes shown as `phase` (rate and ETA start over). */
  startPass(phase: string, total: number): void {
    if (!this.enabled) return;
    this.#phase = phase;
    this.total = total;
    this.#passStarted = Date.now();
    this.#done = 0;
    this.#draw(); // a new phase shows at once
  }

  /** `store` with its downloads and uploads counted here (`store` itself when inert). */
  wrap(store: Store, uploadPhase?: string): Store {
    return this.enabled ? countingStore(store, this, uploadPhase) : store;
  }

  /**
   * `source` with every pass over it counted here: pass 1 is shown as `phases[0]`, pass 2 as
   * `phases[1]` and so on (the last one for any further pass, e.g. a retried upload), each from 0.
   */
  source(source: ByteSource, phases: string[]): ByteSource {
    if (!this.enabled) return source;
    let pass = 0;
    const chunks = async function* (this: Progress) {
      this.startPass(phases[Math.min(pass++, phases.length - 1)], source.size);
      for await (const chunk of source.chunks()) {
        this.done += chunk.byteLength;
        yield chunk;
      }
    };
    return { size: source.size, chunks: chunks.bind(this) };
  }

  /** Removes the line; call once the operation ended (either way). */
  finish(): void {
    if (!this.enabled) return;
    clearInterval(this.#timer);
    log.onBeforeWrite(null);
    this.#clear();
  }
}

/** Whether progress is shown at all: a terminal on stderr, human logs, info level. */
export function progressEnabled(): boolean {
  const { level, format } = log.logSettings();
  return format === "human" && (level === "info" || level === "debug") && Deno.stderr.isTerminal();
}

/** A progress line for an operation of `total` bytes; inert when progress is not shown. */
export function startProgress(label: string, total: number): Progress {
  return new Progress(label, total, progressEnabled());
}

/**
 * Runs `work` with a store that counts the bytes it downloads and uploads into a progress line
 * labelled `label` with `total` bytes expected; the line is removed when `work` ends. When progress
 * is not shown, `work` gets `store` itself.
 */
export async function withProgress<T>(
  label: string,
  total: number,
  store: Store,
  work: (store: Store) => Promise<T>,
): Promise<T> {
  const progress = startProgress(label, total);
  try {
    return await work(progress.wrap(store));
  } finally {
    progress.finish();
  }
}

/** `store` with downloads and uploads counted into `progress`. */
function countingStore(store: Store, progress: Progress, uploadPhase?: string): Store {
  const counted: Store = {
    url: store.url,
    get: async (key) => {
      const data = await store.get(key);
      return { ...data, body: countedBody(data.body, (n) => (progress.done += n)) };
    },
    put: (key, body, metadata, contentMd5) =>
      store.put(key, countedSource(body, progress, uploadPhase), metadata, contentMd5),
    usesContentMd5: (size) => store.usesContentMd5?.(size) ?? true,
    head: (key) => store.head(key),
    list: (prefix, startAfter) => store.list(prefix, startAfter),
    putSmall: (key, body, metadata, condition) => store.putSmall(key, body, metadata, condition),
    delete: (key) => store.delete(key),
    deleteMany: (keys) => store.deleteMany(keys),
    // The codec travels with the store: without it, writes would not be encoded and encrypted
    // objects could not be read.
    codec: store.codec,
  };
  if (store.abortIncompleteUploads) counted.abortIncompleteUploads = (p) => store.abortIncompleteUploads!(p);
  return counted;
}

/** A source whose chunks count into `progress`; a retry that reads it again starts over. */
function countedSource(source: ByteSource, progress: Progress, phase?: string): ByteSource {
  const base = progress.done;
  return {
    size: source.size,
    async *chunks() {
      if (phase) progress.startPass(phase, source.size);
      else progress.done = base;
      for await (const chunk of source.chunks()) {
        progress.done += chunk.byteLength;
        yield chunk;
      }
    },
  };
}

/** A byte stream (BYOB reads still work) that reports the size of each read. */
function countedBody(
  body: ReadableStream<Uint8Array>,
  onBytes: (n: number) => void,
): ReadableStream<Uint8Array> {
  const reader = body.getReader({ mode: "byob" });
  return new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: 64 * 1024,
    async pull(controller) {
      const request = controller.byobRequest!;
      const view = request.view as Uint8Array;
      const { done, value } = await reader.read(
        new Uint8Array(view.buffer, view.byteOffset, view.byteLength),
      );
      if (done) {
        controller.close();
        if (value) request.respondWithNewView(value);
        else request.respond(0);
        return;
      }
      onBytes(value!.byteLength);
      request.respondWithNewView(value!);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}
