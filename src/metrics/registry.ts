/**
 * A small Prometheus registry: counters and gauges with labels, and the text exposition format
 * (version 0.0.4). Collectors run at scrape time to read values that live elsewhere (pull model).
 * No client library: the format is a few lines, and none of the npm clients is small under Deno.
 * @module
 */

/** Label values of one series. */
export type Labels = Record<string, string>;

type Kind = "counter" | "gauge";

/** One metric family: a name, a help text and a value per label set. */
export class Metric {
  readonly #values = new Map<string, { labels: Labels; value: number }>();

  constructor(readonly name: string, readonly help: string, readonly kind: Kind) {}

  #entry(labels: Labels) {
    const id = JSON.stringify(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)));
    let entry = this.#values.get(id);
    if (!entry) this.#values.set(id, entry = { labels, value: 0 });
    return entry;
  }

  /** Adds `by` (default 1) to a counter. */
  inc(labels: Labels = {}, by = 1): void {
    this.#entry(labels).value += by;
  }

  /** Sets a gauge. */
  set(labels: Labels, value: number): void {
    this.#entry(labels).value = value;
  }

  /** The current value (0 when never set). */
  get(labels: Labels = {}): number {
    return this.#entry(labels).value;
  }

  /** Forgets every series whose labels include `labels` (a database that is no longer watched). */
  remove(labels: Labels): void {
    for (const [id, entry] of this.#values) {
      if (Object.entries(labels).every(([k, v]) => entry.labels[k] === v)) this.#values.delete(id);
    }
  }

  /** The family in text exposition format. */
  expose(): string {
    let text = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} ${this.kind}\n`;
    for (const { labels, value } of this.#values.values()) {
      const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
      text += `${this.name}${pairs.length ? `{${pairs.join(",")}}` : ""} ${formatValue(value)}\n`;
    }
    return text;
  }
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (!Number.isFinite(value)) return value > 0 ? "+Inf" : "-Inf";
  return String(value);
}

/** A set of metric families plus the collectors that refresh them at scrape time. */
export class Registry {
  readonly #metrics = new Map<string, Metric>();
  readonly #collectors: (() => void)[] = [];

  #add(name: string, help: string, kind: Kind): Metric {
    const existing = this.#metrics.get(name);
    if (existing) return existing;
    const metric = new Metric(name, help, kind);
    this.#metrics.set(name, metric);
    return metric;
  }

  /** A counter family (created once; later calls return the same one). */
  counter(name: string, help: string): Metric {
    return this.#add(name, help, "counter");
  }

  /** A gauge family. */
  gauge(name: string, help: string): Metric {
    return this.#add(name, help, "gauge");
  }

  /** Runs `collect` before every exposition. */
  onCollect(collect: () => void): void {
    this.#collectors.push(collect);
  }

  /** Everything, in text exposition format. */
  expose(): string {
    for (const collect of this.#collectors) collect();
    return [...this.#metrics.values()].map((m) => m.expose()).join("");
  }
}

/** The process-wide registry (store request counters write here). */
export const registry = new Registry();
