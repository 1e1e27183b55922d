import { z } from 'zod';
import type { Logger } from 'pino';
import type { Database } from '../db/database.js';
import type { Clock } from '../lib/clock.js';
import type { Kek } from '../keys/kek.js';
import type { Decision } from '../decisions/decider.js';
import type { ApprovalRow } from './approval.repository.js';
import type { Vote } from './approval.table.js';
import { SIGNATURE_HEADER, signWebhookBody, webhookSecretFor } from './approval-webhook.js';

const answer = z.object({ decision: z.enum(['approve', 'deny']), comment: z.string().max(1024).optional() });

/** A delegated approver's answer, as a vote. */
export interface DelegatedAnswer {
  approver: string;
  vote: Vote;
  comment: string | null;
}

/**
 * Asks a delegated approver (a webhook registered under /v1/admin/approval-webhooks) to decide a
 * step-up: POSTs the request, the signals and the policy reasons, HMAC-signed with that receiver's
 * secret, and waits `timeoutMs` for `{decision: "approve"|"deny", comment}`. Any failure (not
 * registered, timeout, non-2xx, another shape) answers undefined: the request waits for people.
 */
export async function askDelegatedApprover(
  deps: { db: Database; kek: Kek; clock: Clock; log: Logger },
  target: { url: string; timeoutMs: number },
  approval: ApprovalRow,
  decision: Decision,
): Promise<DelegatedAnswer | undefined> {
  const log = deps.log.child({ approval_id: approval.id, delegated_approver: new URL(target.url).host });
  try {
    const secret = await webhookSecretFor(deps.db, deps.kek, target.url);
    if (!secret) {
      log.warn('delegated approver URL is not a registered approval webhook; left for people');
      return undefined;
    }
    const body = JSON.stringify({
      type: 'approval.decide',
      approval: { id: approval.id, workload: approval.workload_id, task: approval.task, params: approval.params, purpose: approval.purpose, expires_at: approval.expires_at.toISOString() },
      decision: { id: decision.id, reasons: decision.reasons, determining_policies: decision.determining, signals: decision.signals },
    });
    const res = await fetch(target.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', [SIGNATURE_HEADER]: signWebhookBody(secret, body, deps.clock.now()) },
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(target.timeoutMs),
    });
    if (res.status < 200 || res.status >= 300) {
      await res.body?.cancel();
      log.warn({ status: res.status }, 'delegated approver refused to answer; left for people');
      return undefined;
    }
    const parsed = answer.safeParse(await res.json());
    if (!parsed.success) {
      log.warn('delegated approver answered something other than {decision: approve|deny}; left for people');
      return undefined;
    }
    return { approver: `webhook:${new URL(target.url).host}`, vote: parsed.data.decision, comment: parsed.data.comment ?? null };
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'delegated approver did not answer in time; left for people');
    return undefined;
  }
}
