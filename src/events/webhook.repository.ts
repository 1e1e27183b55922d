import { sql } from 'kysely';
import type { Database } from '../db/database.js';
import { newId } from '../lib/ids.js';
import type { GrantEndedData } from '../grants/grant-events.js';

export interface ClaimedDelivery {
  id: string;
  attempts: number;
  event_id: string;
  event_created_at: Date;
  data: GrantEndedData;
  url: string;
  audience: string;
}

/** Adds a subscriber; it receives every grant end from now on. */
export async function createSubscription(db: Database, input: { url: string; audience: string; createdBy: string }, now: Date) {
  const row = { id: newId(), url: input.url, audience: input.audience, created_by: input.createdBy, created_at: now };
  await db.insertInto('webhook_subscriptions').values(row).execute();
  return row;
}

/**
 * Leases up to `limit` due deliveries, revocations first: counts the attempt and pushes `next_attempt_at` past the lease,
 * in one statement over rows no other replica holds. A replica that dies mid-delivery leaves the row to
 * be retried when the lease runs out, never stuck.
 */
export async function claimDueDeliveries(db: Database, now: Date, limit: number, leaseSeconds: number): Promise<ClaimedDelivery[]> {
  const leaseUntil = new Date(now.getTime() + leaseSeconds * 1000);
  const { rows } = await sql<ClaimedDelivery>`
    with claimed as (
      update webhook_deliveries d set attempts = d.attempts + 1, next_attempt_at = ${leaseUntil}
      where d.id in (
        select id from webhook_deliveries where status = 'pending' and next_attempt_at <= ${now}
        order by priority, next_attempt_at limit ${limit} for update skip locked)
      returning d.id, d.attempts, d.event_id, d.subscription_id
    )
    select c.id, c.attempts, c.event_id, e.created_at as event_created_at, e.data, s.url, s.audience
    from claimed c join security_events e on e.id = c.event_id join webhook_subscriptions s on s.id = c.subscription_id`.execute(db);
  return rows;
}

export async function markDelivered(db: Database, id: string, now: Date): Promise<void> {
  await db.updateTable('webhook_deliveries').set({ status: 'delivered', delivered_at: now, last_error: null }).where('id', '=', id).where('status', '=', 'pending').execute();
}

/** Records a failed attempt: retried at `retryAt`, or, with no attempt left, kept as `failed`. */
export async function markAttemptFailed(db: Database, id: string, error: string, retryAt: Date | null): Promise<void> {
  await db
    .updateTable('webhook_deliveries')
    .set(retryAt ? { last_error: error, next_attempt_at: retryAt } : { last_error: error, status: 'failed' })
    .where('id', '=', id)
    .where('status', '=', 'pending')
    .execute();
}

/** Deliveries kept as failed after their last attempt, and deliveries waiting: across every replica. */
export async function countDeliveries(db: Database): Promise<{ failed: number; pending: number }> {
  const { rows } = await sql<{ failed: number; pending: number }>`
    select (select count(*) from webhook_deliveries where status = 'failed')::int as failed,
      (select count(*) from webhook_deliveries where status = 'pending')::int as pending`.execute(db);
  return rows[0]!;
}
