import { createHmac } from 'node:crypto';
import { sql } from 'kysely';
import type { Database } from '../db/database.js';
import type { Kek } from '../keys/kek.js';
import { epochSeconds } from '../lib/clock.js';
import { newId, randomSecret } from '../lib/ids.js';

/** Approval webhook secrets carry a prefix so secret scanners and people recognise them. */
export const WEBHOOK_SECRET_PREFIX = 'whsec_';
/** The header with the HMAC-SHA256 signature: `t=<unix seconds>,v1=<hex>` over `<t>.<raw body>`. */
export const SIGNATURE_HEADER = 'tessera-signature';
/** How old a signed timestamp a receiver should accept (documented for receivers; replays older are refused). */
export const SIGNATURE_TOLERANCE_SECONDS = 300;

export type ApprovalEvent = 'approval.requested' | 'approval.approved' | 'approval.denied' | 'approval.expired';

const aad = (id: string) => `approval-webhook:${id}`;

/** Registers a receiver; returns its secret, shown once. The broker keeps it sealed with the KEK (it must sign). */
export async function createApprovalWebhook(db: Database, kek: Kek, input: { url: string; createdBy: string }, now: Date) {
  const id = newId();
  const secret = `${WEBHOOK_SECRET_PREFIX}${randomSecret(32)}`;
  const row = { id, url: input.url, secret_enc: kek.seal(secret, aad(id)), created_by: input.createdBy, created_at: now };
  await db.insertInto('approval_webhooks').values(row).execute();
  return { id, url: row.url, created_at: now, secret };
}

/** The secret of an enabled receiver registered at exactly this URL, if any (delegated approvers). */
export async function webhookSecretFor(db: Database, kek: Kek, url: string): Promise<string | undefined> {
  const row = await db.selectFrom('approval_webhooks').select(['id', 'secret_enc']).where('url', '=', url).where('disabled_at', 'is', null).orderBy('created_at', 'desc').executeTakeFirst();
  return row ? kek.open(row.secret_enc, aad(row.id)) : undefined;
}

/** Opens one receiver's secret. */
export const openWebhookSecret = (kek: Kek, row: { id: string; secret_enc: string }) => kek.open(row.secret_enc, aad(row.id));

/**
 * The signature header value for `body` sent at `at`. The timestamp is inside the signed content, so a
 * captured request replayed later fails the receiver's tolerance check, and cannot be re-dated.
 */
export function signWebhookBody(secret: string, body: string, at: Date): string {
  const t = epochSeconds(at);
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

/**
 * Stages one notification per enabled receiver inside the caller's transaction: the event leaves only
 * if the state change it reports commits. Delivered (and retried) by the deliver-approval-webhooks job.
 */
export async function stageApprovalEvent(trx: Database, approvalId: string, event: ApprovalEvent, data: Record<string, unknown>, now: Date): Promise<void> {
  const payload = JSON.stringify({ id: newId(), type: event, created_at: now.toISOString(), approval: data });
  await sql`
    insert into approval_webhook_deliveries (webhook_id, approval_id, event, payload, status, next_attempt_at, created_at)
    select id, ${approvalId}, ${event}, ${payload}::jsonb, 'pending', ${now}, ${now} from approval_webhooks where disabled_at is null
    on conflict do nothing`.execute(trx);
}
