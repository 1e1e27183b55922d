import type { Logger } from 'pino';
import type { Database } from '../db/database.js';
import type { KeyStore } from '../keys/keystore.js';
import type { JobResult } from '../scheduler/job.js';
import { claimDueDeliveries, markAttemptFailed, markDelivered, type ClaimedDelivery } from './webhook.repository.js';
import { sessionRevokedClaims } from './security-event-token.js';
import { webhookAttempts, webhookFailed } from './webhook.metrics.js';

/** Deliveries leased per run. */
const BATCH_SIZE = 50;
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
  keys: KeyStore;
  issuer: string;
  log: Logger;
}

/**
 * Pushes due Security Event Tokens to their subscribers (RFC 8935 push delivery: a signed
 * `application/secevent+jwt` POST, any 2xx accepts it). Failures retry with exponential backoff; after
 * the last attempt the delivery stays `failed` in the table, is logged as an error and counted.
 */
export async function deliverWebhooks(deps: DeliveryDeps, now: Date): Promise<JobResult> {
  const due = await claimDueDeliveries(deps.db, now, BATCH_SIZE, LEASE_SECONDS);
  const outcomes = await Promise.all(due.map((d) => deliverOne(deps, d, now)));
  const count = (o: string) => outcomes.filter((x) => x === o).length;
  return { processed: due.length, detail: { delivered: count('delivered'), retry: count('retry'), failed: count('failed') } };
}

async function deliverOne(deps: DeliveryDeps, d: ClaimedDelivery, now: Date): Promise<'delivered' | 'retry' | 'failed'> {
  let error: string;
  try {
    const { token } = deps.keys.sign('secevent+jwt', sessionRevokedClaims({ issuer: deps.issuer, audience: d.audience, eventId: d.event_id, createdAt: d.event_created_at, data: d.data }));
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
