import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { Database } from '../db/database.js';
import type { Kek } from '../keys/kek.js';
import type { JobResult } from '../scheduler/job.js';
import { backoffSeconds, MAX_ATTEMPTS } from '../events/deliver-webhooks.job.js';
import { metrics } from '../lib/metrics.js';
import { openWebhookSecret, SIGNATURE_HEADER, signWebhookBody } from './approval-webhook.js';

/** Deliveries leased per run. */
const BATCH_SIZE = 50;
/** A receiver has this long to answer before the attempt counts as failed. */
const DELIVERY_TIMEOUT_MS = 5_000;
/** Longer than one delivery can take, so a lease only runs out when its replica died. */
const LEASE_SECONDS = 60;

const attempts = metrics.counter('tessera_approval_webhook_attempts_total', 'Approval notification delivery attempts, by outcome (delivered, retry, failed).');
const givenUp = metrics.counter('tessera_approval_webhooks_failed_total', 'Approval notifications that could not be delivered after every attempt.');

interface Claimed {
  id: string;
  attempts: number;
  event: string;
  payload: Record<string, unknown>;
  url: string;
  webhook_id: string;
  secret_enc: string;
}

/** Leases due deliveries (counts the attempt, pushes the next one past the lease) over rows no other replica holds. */
async function claimDue(db: Database, now: Date): Promise<Claimed[]> {
  const leaseUntil = new Date(now.getTime() + LEASE_SECONDS * 1000);
  const { rows } = await sql<Claimed>`
    with claimed as (
      update approval_webhook_deliveries d set attempts = d.attempts + 1, next_attempt_at = ${leaseUntil}
      where d.id in (
        select id from approval_webhook_deliveries where status = 'pending' and next_attempt_at <= ${now}
        order by next_attempt_at limit ${BATCH_SIZE} for update skip locked)
      returning d.id, d.attempts, d.event, d.payload, d.webhook_id
    )
    select c.*, w.url, w.secret_enc from claimed c join approval_webhooks w on w.id = c.webhook_id`.execute(db);
  return rows;
}

/**
 * Pushes approval notifications (requested, approved, denied, expired): a JSON POST signed with
 * HMAC-SHA256 over `<timestamp>.<body>` with the receiver's secret (header `tessera-signature`), any 2xx
 * accepts. Failures retry with the same backoff as CAEP webhooks; after the last attempt the delivery
 * stays `failed`, logged as an error and counted. Each attempt is signed with its own timestamp.
 */
export async function deliverApprovalWebhooks(deps: { db: Database; kek: Kek; log: Logger }, now: Date): Promise<JobResult> {
  const due = await claimDue(deps.db, now);
  const outcomes = await Promise.all(due.map((d) => deliverOne(deps, d, now)));
  const count = (o: string) => outcomes.filter((x) => x === o).length;
  return { processed: due.length, detail: { delivered: count('delivered'), retry: count('retry'), failed: count('failed') } };
}

async function deliverOne(deps: { db: Database; kek: Kek; log: Logger }, d: Claimed, now: Date): Promise<'delivered' | 'retry' | 'failed'> {
  let error: string;
  try {
    const body = JSON.stringify(d.payload);
    const res = await fetch(d.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'tessera-event': d.event,
        'tessera-delivery': d.id,
        [SIGNATURE_HEADER]: signWebhookBody(openWebhookSecret(deps.kek, { id: d.webhook_id, secret_enc: d.secret_enc }), body, now),
      },
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
    });
    await res.body?.cancel();
    if (res.status >= 200 && res.status < 300) {
      await deps.db.updateTable('approval_webhook_deliveries').set({ status: 'delivered', delivered_at: now, last_error: null }).where('id', '=', d.id).where('status', '=', 'pending').execute();
      attempts.inc({ outcome: 'delivered' });
      return 'delivered';
    }
    error = `HTTP ${res.status}`;
  } catch (err) {
    error = (err as Error).message;
  }
  const last = d.attempts >= MAX_ATTEMPTS;
  const retryAt = new Date(now.getTime() + backoffSeconds(d.attempts) * 1000);
  await deps.db
    .updateTable('approval_webhook_deliveries')
    .set(last ? { last_error: error, status: 'failed' } : { last_error: error, next_attempt_at: retryAt })
    .where('id', '=', d.id)
    .where('status', '=', 'pending')
    .execute();
  attempts.inc({ outcome: last ? 'failed' : 'retry' });
  if (last) {
    givenUp.inc();
    deps.log.error({ delivery_id: d.id, event: d.event, attempts: d.attempts, error }, 'approval webhook given up; kept as failed');
  } else {
    deps.log.warn({ delivery_id: d.id, attempts: d.attempts, error }, 'approval webhook failed; will retry');
  }
  return last ? 'failed' : 'retry';
}
