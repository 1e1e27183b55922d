import { sql } from 'kysely';
import type { Database } from '../db/database.js';
import type { GrantRow } from './grant.repository.js';
import { grantsEnded } from './grant.metrics.js';
import { recordAudit } from '../audit/audit-outbox.js';

/** The CAEP event type every grant end is published as: the credential's session is over. */
export const CAEP_SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked';

/** CAEP `initiating_entity`: who caused the end, from the `ended_by` prefix. */
export type InitiatingEntity = 'admin' | 'user' | 'policy' | 'system';

export function initiatingEntity(endedBy: string | null): InitiatingEntity {
  const kind = (endedBy ?? '').split(':')[0];
  if (kind === 'admin') return 'admin';
  if (kind === 'workload') return 'user';
  if (kind === 'policy') return 'policy';
  return 'system';
}

/** What the outbox keeps of an ended grant; the SET is built from it at delivery time. */
export interface GrantEndedData {
  grant_id: string;
  workload_id: string;
  task: string;
  status: GrantRow['status'];
  ended_by: string | null;
  reason: string | null;
  end_decision_id: string | null;
  initiating_entity: InitiatingEntity;
  event_timestamp: number;
}

/**
 * The one place a grant's end becomes an event. Call it inside the transaction that ended the grants
 * (with exactly the rows the conditional update returned), so each end is recorded once or not at all:
 * one `security_events` row per grant and one pending webhook delivery per active subscription.
 * and one audit event per grant (actor = `ended_by`), staged for the hash chain.
 */
export async function recordGrantsEnded(trx: Database, grants: GrantRow[], now: Date, requestId: string | null = null): Promise<void> {
  if (grants.length === 0) return;
  await recordAudit(
    trx,
    grants.map((g) => ({
      actor: g.ended_by ?? 'system',
      action: `grant.${g.status}`,
      outcome: 'success',
      target_type: 'grant',
      target_id: g.id,
      request_id: requestId,
      at: g.ended_at ?? now,
      data: { task: g.task, reason: g.end_reason, end_decision_id: g.end_decision_id, parent_id: g.parent_id },
    })),
    now,
  );
  const rows = grants.map((g) => ({
    grant_id: g.id,
    data: {
      grant_id: g.id,
      workload_id: g.workload_id,
      task: g.task,
      status: g.status,
      ended_by: g.ended_by,
      reason: g.end_reason,
      end_decision_id: g.end_decision_id,
      initiating_entity: initiatingEntity(g.ended_by),
      event_timestamp: Math.floor((g.ended_at ?? now).getTime() / 1000),
    } satisfies GrantEndedData,
  }));
  // One statement: the events, then a delivery per subscriber, whatever the batch size. Revocations
  // go first (priority 0): a receiver must act on them, while an expiry only confirms what exp said.
  await sql`
    with ev as (
      insert into security_events (grant_id, type, data, created_at)
      select r.grant_id, ${CAEP_SESSION_REVOKED}, r.data, ${now}
      from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as r(grant_id uuid, data jsonb)
      returning id, data->>'status' as status
    )
    insert into webhook_deliveries (event_id, subscription_id, status, attempts, next_attempt_at, created_at, priority)
    select ev.id, s.id, 'pending', 0, ${now}, ${now}, case when ev.status = 'revoked' then 0 else 1 end
    from ev cross join webhook_subscriptions s
    where s.disabled_at is null`.execute(trx);
  for (const r of rows) grantsEnded.inc({ status: r.data.status, initiating_entity: r.data.initiating_entity });
}
