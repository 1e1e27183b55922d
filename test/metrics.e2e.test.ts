import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricValue, scrapeMetrics, startTestBroker, TEST_ADMIN_KEY, type TestBroker } from './support/broker.js';
import { LOOP_SAMPLE_MS, loopDelay } from '../src/lib/process-metrics.js';
import { scrape } from '../scripts/bench/broker-metrics.js';

// The broker runs in this process, so what the test does to its own event loop and heap, the broker's
// /metrics sees: a scrape over HTTP is how Prometheus would read them.
let broker: TestBroker;
let stopped = false;
beforeAll(async () => {
  broker = await startTestBroker({});
});
afterAll(async () => {
  if (!stopped) await broker?.stop();
});

const read = (name: string, labels = '') => metricValue(broker.url, name, labels);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Keeps the event loop busy for `ms` of wall time: the loop can do nothing else meanwhile. */
const busy = (ms: number) => {
  const until = performance.now() + ms;
  while (performance.now() < until);
};
/** Spends `ms` of this process's CPU time, however long a loaded machine takes to give it. */
const spendCpu = (ms: number) => {
  const from = process.cpuUsage();
  for (;;) {
    const { user, system } = process.cpuUsage(from);
    if (user + system >= ms * 1000) return;
  }
};
/** Samples of the event loop's delay above 100 ms, from one scrape (a sample may land between two). */
const over100ms = async () => {
  const value = await scrapeMetrics(broker.url);
  return value('nodejs_eventloop_delay_seconds_bucket', 'le="+Inf"') - value('nodejs_eventloop_delay_seconds_bucket', 'le="0.1"');
};

describe('request durations at /metrics', () => {
  const series = (method: string, route: string, status: number) => `method="${method}",route="${route}",status="${status}"`;
  const count = (labels: string) => read('tessera_http_request_duration_seconds_count', labels);

  it('counts each request under its route pattern and status, never its path', async () => {
    const jwks = series('GET', '/.well-known/jwks.json', 200);
    const before = await count(jwks);
    expect((await fetch(`${broker.url}/.well-known/jwks.json`)).status).toBe(200);
    expect(await count(jwks)).toBe(before + 1);

    // A mounted router's routes keep their prefix, answered (200) or refused on the way (401, 404).
    const admin = (id: string, key?: string) => fetch(`${broker.url}/v1/admin/workloads/${id}`, { headers: key ? { authorization: `Bearer ${key}` } : {} });
    expect((await admin('wl-secret-id-1')).status).toBe(401);
    expect((await admin('wl-secret-id-2', TEST_ADMIN_KEY)).status).toBe(404);
    expect(await count(series('GET', '/v1/admin/workloads/:id', 401))).toBe(1);
    expect(await count(series('GET', '/v1/admin/workloads/:id', 404))).toBe(1);
    expect(await count(series('GET', '/v1/admin/workloads', 200))).toBe(0);
    expect((await fetch(`${broker.url}/v1/admin/workloads`, { headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` } })).status).toBe(200);
    expect(await count(series('GET', '/v1/admin/workloads', 200))).toBe(1);

    expect((await fetch(`${broker.url}/no/such/path-xyz`)).status).toBe(404);
    expect(await count(series('GET', 'unmatched', 404))).toBeGreaterThanOrEqual(1);
    const text = await (await fetch(`${broker.url}/metrics`)).text();
    expect(text).not.toMatch(/wl-secret-id|path-xyz/);
  });

  /** Aborted POSTs, whatever route they reached. */
  const aborted = async () =>
    [...(await scrape(broker.url))].filter(([k]) => /^tessera_http_request_duration_seconds_count\{method="POST",route="[^"]*",status="aborted"\}$/.test(k)).reduce((n, [, v]) => n + v, 0);

  it('counts a request whose client left before the answer as aborted', async () => {
    const before = await aborted();
    // Half a body, then the client hangs up: the broker is still reading it, and never answers.
    const { port } = new URL(broker.url);
    const socket = connect(Number(port), '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.write('POST /v1/grants HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"task":');
    await sleep(50);
    socket.destroy();
    let after = before;
    for (let i = 0; i < 250 && after === before; i++, await sleep(20)) after = await aborted();
    expect(after).toBe(before + 1);
  });

  it('counts a body refused before it was read under its status, not as aborted', async () => {
    const refused = series('POST', '/v1/signals', 401);
    const [before, abortedBefore] = [await count(refused), await aborted()];
    // Far larger than a socket's buffers: most of it is still on its way when the 401 is sent.
    const body = JSON.stringify({ signals: [{ type: 'runner_trust', subject: 'x', value: 'y'.repeat(200_000) }] });
    const res = await fetch(`${broker.url}/v1/signals`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer not-a-source-key' }, body });
    expect(res.status).toBe(401);
    await res.arrayBuffer();
    expect(await count(refused)).toBe(before + 1);
    expect(await aborted()).toBe(abortedBefore);
  });

  it('puts each request into the buckets its duration reaches', async () => {
    const jwks = series('GET', '/.well-known/jwks.json', 200);
    await fetch(`${broker.url}/.well-known/jwks.json`);
    const value = await scrapeMetrics(broker.url);
    const total = value('tessera_http_request_duration_seconds_count', jwks);
    expect(value('tessera_http_request_duration_seconds_bucket', `${jwks},le="10"`)).toBe(total);
    expect(value('tessera_http_request_duration_seconds_sum', jwks)).toBeGreaterThan(0);
    expect(value('tessera_http_request_duration_seconds_sum', jwks)).toBeLessThan(total * 10);
  });
});

describe('process metrics at /metrics', () => {
  it('reports CPU time as it is spent, and the process memory and start time', async () => {
    const before = await read('process_cpu_seconds_total');
    spendCpu(200);
    const after = await read('process_cpu_seconds_total');
    expect(after - before).toBeGreaterThanOrEqual(0.2);
    expect(await read('process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(await read('process_resident_memory_bytes')).toBeGreaterThan(10 * 2 ** 20);
    expect(await read('nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    const started = await read('process_start_time_seconds');
    expect(started).toBeLessThanOrEqual(Date.now() / 1000);
    expect(started).toBeGreaterThan(Date.now() / 1000 - 3600);
  });

  it('shows a blocked event loop as a sample as late as the block was long', async () => {
    await sleep(LOOP_SAMPLE_MS * 3); // the sampler has run, so the block below delays a timer already due
    const before = await over100ms();
    busy(250);
    await sleep(LOOP_SAMPLE_MS * 3);
    expect((await over100ms()) - before).toBeGreaterThanOrEqual(1);
  });

  it('counts garbage collection pauses by kind', async () => {
    const before = await read('nodejs_gc_duration_seconds_count', 'kind="minor"');
    let keep = 0;
    for (let i = 0; i < 200_000; i++) keep += new Array(64).fill(i).length; // short-lived: scavenged young
    await sleep(10); // GC entries reach observers asynchronously
    expect(keep).toBe(200_000 * 64);
    expect(await read('nodejs_gc_duration_seconds_count', 'kind="minor"')).toBeGreaterThan(before);
  });

  it('stops sampling when the last broker of the process closes', async () => {
    await broker.stop();
    stopped = true;
    const samples = loopDelay.snapshot().count;
    await sleep(LOOP_SAMPLE_MS * 5);
    expect(loopDelay.snapshot().count).toBe(samples);
  });
});
