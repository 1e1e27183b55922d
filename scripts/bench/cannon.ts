import autocannon from 'autocannon';
import type { LatencySummary } from '../lib/stats.js';

/** One load step's figures: throughput, latency (ms, as autocannon measures them), what went wrong. */
export interface StepResult extends LatencySummary {
  rps: number;
  total: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statuses: Record<string, number>;
}

export interface CannonStep {
  url: string;
  connections: number;
  durationSeconds: number;
  /** Fixed arrival rate (requests/s over all connections); absent drives as fast as the server answers. */
  overallRate?: number;
  /** Stops after this many requests (for steps whose requests each need a single-use credential). */
  amount?: number;
  method?: 'GET' | 'POST';
  path?: string;
  body?: string;
  /** Headers per request (e.g. a fresh identity token each time). */
  headers: () => Record<string, string>;
  /** Sees every response (e.g. to collect the grant ids of the tokens handed out). */
  onResponse?: (status: number, body: string) => void;
}

/** Runs one autocannon step and reduces its result to the figures the bench reports. */
export async function cannon(step: CannonStep): Promise<StepResult> {
  const r = await autocannon({
    url: step.url,
    connections: step.connections,
    duration: step.durationSeconds,
    ...(step.amount ? { amount: step.amount } : {}),
    ...(step.overallRate ? { overallRate: step.overallRate } : {}),
    timeout: 10,
    requests: [
      {
        method: step.method ?? 'GET',
        path: step.path ?? '/',
        ...(step.body ? { body: step.body } : {}),
        setupRequest: (req) => ({ ...req, headers: { 'content-type': 'application/json', ...step.headers() } }),
        ...(step.onResponse ? { onResponse: step.onResponse } : {}),
      },
    ],
  });
  const statuses = Object.fromEntries(Object.entries(r.statusCodeStats ?? {}).map(([k, v]) => [k, Number(v.count)]));
  const total = Object.values(statuses).reduce((a, b) => a + b, 0);
  return {
    rps: total / r.duration,
    total,
    ok: r['2xx'],
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    statuses,
    count: total,
    p50: r.latency.p50,
    p99: r.latency.p99,
    max: r.latency.max,
    mean: r.latency.mean,
  };
}
