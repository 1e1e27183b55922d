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

/**
 * One histogram series between two scrapes: how many observations each bucket gained (`le` as written,
 * "+Inf" the total), and its finite bucket bounds in ascending order.
 */
function histogramBetween(before: Map<string, number>, after: Map<string, number>, name: string, labels = '') {
  const prefix = `${name}_bucket{${labels ? `${labels},` : ''}le="`;
  const gained = (le: string) => (after.get(`${prefix}${le}"}`) ?? 0) - (before.get(`${prefix}${le}"}`) ?? 0);
  const bounds = [...after.keys()].filter((k) => k.startsWith(prefix) && !k.endsWith('le="+Inf"}')).map((k) => Number(k.slice(prefix.length, -2))).sort((a, b) => a - b);
  const count = gained('+Inf');
  /** Share of the observations above `le` seconds. */
  const over = (le: number) => (count ? (count - gained(String(le))) / count : 0);
  /** The smallest bound holding at least `q` of the observations, in ms (Infinity past the last). */
  const atMostMs = (q: number) => (bounds.find((b) => gained(String(b)) >= q * count) ?? Infinity) * 1000;
  return { count, over, atMostMs };
}

export function loopBetween(before: Map<string, number>, after: Map<string, number>): LoopReport {
  const loop = histogramBetween(before, after, 'nodejs_eventloop_delay_seconds');
  const delta = (k: string) => (after.get(k) ?? 0) - (before.get(k) ?? 0);
  const gc = (part: 'count' | 'sum') => [...after.keys()].filter((k) => k.startsWith(`nodejs_gc_duration_seconds_${part}`)).reduce((s, k) => s + delta(k), 0);
  return {
    samples: loop.count,
    over10ms: loop.over(0.01),
    over25ms: loop.over(0.025),
    worstMs: loop.atMostMs(1),
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

export function mintLatencyBetween(before: Map<string, number>, after: Map<string, number>): ServerLatency {
  const mints = histogramBetween(before, after, 'tessera_http_request_duration_seconds', 'method="POST",route="/v1/grants",status="201"');
  return { count: mints.count, p50AtMostMs: mints.atMostMs(0.5), p99AtMostMs: mints.atMostMs(0.99), over25ms: mints.over(0.025) };
}
