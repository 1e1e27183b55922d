import type { Logger } from 'pino';
import type { Database } from '../db/database.js';
import type { KeyStore } from '../keys/keystore.js';
import type { JobResult } from '../scheduler/job.js';
import type { Clock } from '../lib/clock.js';
import { claimDueDeliveries, markAttemptFailed, markDelivered, type ClaimedDelivery } from './webhook.repository.js';
import { sessionRevokedClaims } from './security-event-token.js';
import { webhookAttempts, webhookFailed } from './webhook.metrics.js';

/** Deliveries leased and sent at once; a run sends batch after batch. */
const BATCH_SIZE = 50;
/**
 * How long a run keeps taking batches, inside the job's 5 s tick. One batch per run capped a replica
 * at 10 deliveries a second: 10,000 expiries took 17 minutes, and revocations waited behind them.
 */
export const RUN_BUDGET_MS = 4_000;
/** A receiver has this long to answer before the attempt counts as failed. */
const DELIVERY_TIMEOUT_MS = 5_000;
/** Longer than one delivery can take, so a lease only runs out when its replica died. */
const LEASE_SECONDS = 60;
/** Retries back off 5 s, 10 s, 20 s … capped at an hour: 12 attempts over about 2.4 hours (8,715 s). */
export const MAX_ATTEMPTS = 12;
const BACKOFF_BASE_SECONDS = 5;
const BACKOFF_MAX_SECONDS = 3600;

/** Seconds to wait after failed attempt number `attempt` (1-based). */
export const backoffSeconds = (attempt: number) => Math.min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1));

interface DeliveryDeps {
  db: Database;
  clock: Clock;
  keys: KeyStore;
  issuer: string;
  log: Logger;
}

/**
 * Pushes due Security Event Tokens to their subscribers (RFC 8935 push delivery: a signed
 * `application/secevent+jwt` POST, any 2xx accepts it), revocations first, batch after batch until
 * none is due or the run's budget (by the clock) is spent. Failures retry with exponential backoff;
 * after the last attempt the delivery stays `failed` in the table, is logged as an error and counted.
 */
export async function deliverWebhooks(deps: DeliveryDeps, now: Date, budgetMs = RUN_BUDGET_MS): Promise<JobResult> {
  const started = deps.clock.now().getTime();
  const totals = { delivered: 0, retry: 0, failed: 0 };
  let processed = 0;
  for (;;) {
    const elapsed = deps.clock.now().getTime() - started;
    const at = new Date(now.getTime() + elapsed);
    const due = await claimDueDeliveries(deps.db, at, BATCH_SIZE, LEASE_SECONDS);
    for (const outcome of await Promise.all(due.map((d) => deliverOne(deps, d, at)))) totals[outcome]++;
    processed += due.length;
    if (due.length < BATCH_SIZE || deps.clock.now().getTime() - started >= budgetMs) return { processed, detail: totals };
  }
}

async function deliverOne(deps: DeliveryDeps, d: ClaimedDelivery, now: Date): Promise<'delivered' | 'retry' | 'failed'> {
  let error: string;
  try {
    const { token } = await deps.keys.sign('secevent+jwt', sessionRevokedClaims({ issuer: deps.issuer, audience: d.audience, eventId: d.event_id, createdAt: d.event_created_at, data: d.data }));
    const res = await fetch(d.url, {
      method: 'POST',
      headers: { 'content-type': 'application/secevent+jwt', accept: 'application/json' },
      body: token,
      redirect: 'manual',
      signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
    });
    await res.body?.cancel();
    if (res.status >= 200 && res.status < 300) {
      await markDelivered(deps.db, d.id, now);
      webhookAttempts.inc({ outcome: 'delivered' });
      return 'delivered';
    }
    error = `HTTP ${res.status}`;
  } catch (err) {
    error = (err as Error).message;
  }
  const last = d.attempts >= MAX_ATTEMPTS;
  await markAttemptFailed(deps.db, d.id, error, last ? null : new Date(now.getTime() + backoffSeconds(d.attempts) * 1000));
  webhookAttempts.inc({ outcome: last ? 'failed' : 'retry' });
  if (last) {
    webhookFailed.inc();
    deps.log.error({ delivery_id: d.id, event_id: d.event_id, attempts: d.attempts, error }, 'webhook delivery given up; kept as failed');
  } else {
    deps.log.warn({ delivery_id: d.id, attempts: d.attempts, error }, 'webhook delivery failed; will retry');
  }
  return last ? 'failed' : 'retry';
}
