import http from 'node:http';
import { sleep, summarize } from '../lib/stats.js';
import type { StepResult } from './cannon.js';

export interface PacedStep {
  url: string;
  /** Requests per second, evenly spaced. */
  rate: number;
  durationSeconds: number;
  method: 'POST';
  path: string;
  body: string;
  headers: () => Record<string, string>;
  onResponse?: (status: number, body: string) => void;
}

/**
 * Starts `op` `total` times, the i-th at `started` + i / rate (ms, performance.now()), whatever the
 * ones before it are doing, and waits for all of them; each gets its planned moment to count from.
 */
export async function pace(rate: number, total: number, started: number, op: (plannedAt: number) => Promise<void>): Promise<void> {
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const plannedAt = started + (i * 1000) / rate;
    const wait = plannedAt - performance.now();
    if (wait > 1) await sleep(wait);
    inFlight.push(op(plannedAt));
  }
  await Promise.all(inFlight);
}

/** Sockets kept open for the step: enough that a slow answer never delays the next send. */
const MAX_SOCKETS = 256;

/**
 * An open-loop load at a fixed rate: request i is sent at start + i / rate whatever the answers before
 * it did, and its latency counts from that planned moment (no coordinated omission). autocannon's
 * rate option sends each second's quota back to back and then waits, which measures bursts at full
 * concurrency rather than a steady 70 % load.
 */
export async function paced(step: PacedStep): Promise<StepResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: MAX_SOCKETS });
  const target = new URL(step.path, step.url);
  const total = Math.round(step.rate * step.durationSeconds);
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let errors = 0;
  const started = performance.now();
  const send = (plannedAt: number) =>
    new Promise<void>((resolve) => {
      const body = Buffer.from(step.body);
      const req = http.request(target, { method: step.method, agent, headers: { 'content-type': 'application/json', 'content-length': body.length, ...step.headers() } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          latencies.push(performance.now() - plannedAt);
          statuses[res.statusCode!] = (statuses[res.statusCode!] ?? 0) + 1;
          step.onResponse?.(res.statusCode!, Buffer.concat(chunks).toString());
          resolve();
        });
      });
      req.on('error', () => {
        errors++;
        resolve();
      });
      req.end(body);
    });
  await pace(step.rate, total, started, send);
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  const ok = Object.entries(statuses).reduce((n, [s, c]) => (s.startsWith('2') ? n + c : n), 0);
  const answered = Object.values(statuses).reduce((a, b) => a + b, 0);
  return { ...summarize(latencies), rps: answered / seconds, total: answered, ok, non2xx: answered - ok, errors, timeouts: 0, statuses };
}
