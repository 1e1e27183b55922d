/**
 * A small Prometheus metrics registry (text exposition format 0.0.4): counters and histograms with
 * labels, unlabelled gauges, and values read from their source at each scrape. Written here rather
 * than taken as a dependency because the broker needs only these.
 */

export type Labels = Record<string, string>;

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

function labelText(labels: Labels, extra?: [string, string]): string {
  const pairs = Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1));
  if (extra) pairs.push(extra);
  return pairs.length ? `{${pairs.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}` : '';
}

const key = (labels: Labels) => labelText(labels);

interface Metric {
  render(): string[];
}

/** A monotonically increasing count per label set. */
export class Counter implements Metric {
  readonly #values = new Map<string, { labels: Labels; value: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  inc(labels: Labels = {}, by = 1): void {
    const k = key(labels);
    const entry = this.#values.get(k) ?? { labels, value: 0 };
    entry.value += by;
    this.#values.set(k, entry);
  }

  /** The current value for one label set (0 when never incremented). */
  get(labels: Labels = {}): number {
    return this.#values.get(key(labels))?.value ?? 0;
  }

  render(): string[] {
    return [
      `# HELP ${this.name} ${this.help}`,
      `# TYPE ${this.name} counter`,
      ...[...this.#values.values()].map((e) => `${this.name}${labelText(e.labels)} ${e.value}`),
    ];
  }
}

/** A value that goes up and down, set from its source of truth (e.g. the database) when scraped. */
export class Gauge implements Metric {
  #value: number | undefined;
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  /** The value now; undefined when it could not be read, and then the gauge is left out of the scrape. */
  set(value: number | undefined): void {
    this.#value = value;
  }

  get(): number | undefined {
    return this.#value;
  }

  render(): string[] {
    if (this.#value === undefined) return [];
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`, `${this.name} ${this.#value}`];
  }
}

/**
 * A counter or gauge whose value lives elsewhere (the process's CPU time, its memory) and is read
 * when scraped, so it is never stale and costs nothing between scrapes.
 */
export class Sampled implements Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge',
    readonly read: () => number,
  ) {}

  render(): string[] {
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`, `${this.name} ${this.read()}`];
  }
}

/** Observations counted into cumulative buckets, with their sum and count. */
export class Histogram implements Metric {
  readonly #series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number; max: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[],
  ) {}

  observe(value: number, labels: Labels = {}): void {
    const k = key(labels);
    const s = this.#series.get(k) ?? { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0, max: 0 };
    this.buckets.forEach((b, i) => {
      if (value <= b) s.counts[i]!++;
    });
    s.sum += value;
    s.count++;
    s.max = Math.max(s.max, value);
    this.#series.set(k, s);
  }

  /** Count, sum and largest observation for one label set (for tests and logs). */
  snapshot(labels: Labels = {}): { count: number; sum: number; max: number } {
    const s = this.#series.get(key(labels));
    return { count: s?.count ?? 0, sum: s?.sum ?? 0, max: s?.max ?? 0 };
  }

  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const s of this.#series.values()) {
      this.buckets.forEach((b, i) => lines.push(`${this.name}_bucket${labelText(s.labels, ['le', String(b)])} ${s.counts[i]}`));
      lines.push(`${this.name}_bucket${labelText(s.labels, ['le', '+Inf'])} ${s.count}`);
      lines.push(`${this.name}_sum${labelText(s.labels)} ${s.sum}`);
      lines.push(`${this.name}_count${labelText(s.labels)} ${s.count}`);
    }
    return lines;
  }
}

/** A set of metrics rendered together at /metrics. */
export class MetricsRegistry {
  readonly #metrics = new Map<string, Metric>();

  counter(name: string, help: string): Counter {
    return this.#register(name, new Counter(name, help));
  }

  gauge(name: string, help: string): Gauge {
    return this.#register(name, new Gauge(name, help));
  }

  sampled(name: string, help: string, type: 'counter' | 'gauge', read: () => number): Sampled {
    return this.#register(name, new Sampled(name, help, type, read));
  }

  histogram(name: string, help: string, buckets: readonly number[]): Histogram {
    return this.#register(name, new Histogram(name, help, buckets));
  }

  /** The Prometheus text exposition of every registered metric. */
  render(): string {
    return `${[...this.#metrics.values()].flatMap((m) => m.render()).join('\n')}\n`;
  }

  #register<M extends Metric>(name: string, metric: M): M {
    if (this.#metrics.has(name)) throw new Error(`metric ${name} is registered twice`);
    this.#metrics.set(name, metric);
    return metric;
  }
}

/** The process-wide registry: one per broker process, as Prometheus scrapes one per process. */
export const metrics = new MetricsRegistry();
