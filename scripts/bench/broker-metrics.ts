/** One scrape of a broker's /metrics: the value of each line, keyed `name` or `name{labels}` as written there. */
export async function scrape(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    values.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return values;
}

/** What the broker's event loop and GC did between two scrapes (nodejs_eventloop_delay_seconds, nodejs_gc_duration_seconds). */
export interface LoopReport {
  samples: number;
  /** Shares of the loop samples that were more than 10 ms and more than 25 ms late. */
  over10ms: number;
  over25ms: number;
  /** The upper bound of the highest bucket a sample fell into, in ms (Infinity past the last). */
  worstMs: number;
  gcPauses: number;
  gcMs: number;
}

export function loopBetween(before: Map<string, number>, after: Map<string, number>): LoopReport {
  const delta = (k: string) => (after.get(k) ?? 0) - (before.get(k) ?? 0);
  const bucket = (le: string) => delta(`nodejs_eventloop_delay_seconds_bucket{le="${le}"}`);
  const samples = bucket('+Inf');
  const bounds = [...after.keys()].flatMap((k) => /^nodejs_eventloop_delay_seconds_bucket\{le="([^"]+)"\}$/.exec(k)?.[1] ?? []).map(Number);
  const worst = bounds.sort((a, b) => a - b).find((b) => bucket(String(b)) === samples) ?? Infinity;
  const gcKeys = [...after.keys()].filter((k) => k.startsWith('nodejs_gc_duration_seconds_'));
  const gc = (part: 'count' | 'sum') => gcKeys.filter((k) => k.startsWith(`nodejs_gc_duration_seconds_${part}`)).reduce((s, k) => s + delta(k), 0);
  return {
    samples,
    over10ms: samples ? (samples - bucket('0.01')) / samples : 0,
    over25ms: samples ? (samples - bucket('0.025')) / samples : 0,
    worstMs: worst * 1000,
    gcPauses: gc('count'),
    gcMs: gc('sum') * 1000,
  };
}

/** The mints' time inside the broker between two scrapes (tessera_http_request_duration_seconds, POST /v1/grants, 201). */
export interface ServerLatency {
  count: number;
  /** Upper bounds of the buckets holding the median and the 99th percentile, in ms. */
  p50AtMostMs: number;
  p99AtMostMs: number;
  /** Share of the mints that took the broker more than 25 ms (the open-loop p99 target). */
  over25ms: number;
}

const MINT_SERIES = 'method="POST",route="/v1/grants",status="201"';

export function mintLatencyBetween(before: Map<string, number>, after: Map<string, number>): ServerLatency {
  const name = 'tessera_http_request_duration_seconds_bucket';
  const bucket = (le: string) => (after.get(`${name}{${MINT_SERIES},le="${le}"}`) ?? 0) - (before.get(`${name}{${MINT_SERIES},le="${le}"}`) ?? 0);
  const count = bucket('+Inf');
  const prefix = `${name}{${MINT_SERIES},le="`;
  const bounds = [...after.keys()].filter((k) => k.startsWith(prefix) && !k.endsWith('le="+Inf"}')).map((k) => Number(k.slice(prefix.length, -2))).sort((a, b) => a - b);
  const atMost = (q: number) => (bounds.find((b) => bucket(String(b)) >= q * count) ?? Infinity) * 1000;
  return { count, p50AtMostMs: atMost(0.5), p99AtMostMs: atMost(0.99), over25ms: count ? (count - bucket('0.025')) / count : 0 };
}
