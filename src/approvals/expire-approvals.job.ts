import type { Database } from '../db/database.js';
import type { JobResult } from '../scheduler/job.js';
import { recordAudit } from '../audit/audit-outbox.js';
import { expireDueApprovals, votesOf } from './approval.repository.js';
import { approvalSummary } from './approval-summary.js';
import { stageApprovalEvent } from './approval-webhook.js';

/** Approvals expired per transaction: small enough to keep locks brief, large enough for a backlog. */
const EXPIRE_BATCH_SIZE = 200;

/**
 * Expires approval requests nobody decided (and approved ones nobody redeemed) once past their expiry.
 * Each batch commits the status change with its audit events and notifications; replicas skip each
 * other's locked rows, so each approval expires, and is announced, exactly once. Rows stay as history.
 */
export async function expireApprovals(deps: { db: Database }, now: Date): Promise<JobResult> {
  let total = 0;
  for (;;) {
    const n = await deps.db.transaction().execute(async (trx) => {
      const rows = await expireDueApprovals(trx, now, EXPIRE_BATCH_SIZE);
      for (const a of rows) {
        const data = approvalSummary(a, await votesOf(trx, a.id));
        await recordAudit(trx, { actor: 'system:expiry', action: 'approval.expired', outcome: 'success', target_type: 'approval', target_id: a.id, data }, now);
        await stageApprovalEvent(trx, a.id, 'approval.expired', data, now);
      }
      return rows.length;
    });
    total += n;
    if (n < EXPIRE_BATCH_SIZE) return { processed: total };
  }
}
