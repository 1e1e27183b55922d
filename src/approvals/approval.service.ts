import type { Logger } from 'pino';
import type { Database } from '../db/database.js';
import type { Clock } from '../lib/clock.js';
import type { Kek } from '../keys/kek.js';
import type { CompiledTask } from '../config/registry.js';
import type { Principal } from '../identity/authenticate.js';
import type { Decision } from '../decisions/decider.js';
import { DEFAULT_APPROVAL, forbiddenVoters } from '../config/spec.js';
import { recordDecision, type DecisionContext } from '../decisions/decision.repository.js';
import { recordAudit } from '../audit/audit-outbox.js';
import { canonicalJson, sha256Hex } from '../lib/hash.js';
import { newId } from '../lib/ids.js';
import { TesseraError } from '../lib/errors.js';
import { insertApproval } from './approval.repository.js';
import { approvalSummary, pendingView, type PendingApproval } from './approval-summary.js';
import { castVote } from './cast-vote.js';
import { stageApprovalEvent } from './approval-webhook.js';
import { askDelegatedApprover } from './delegated-approver.js';

// What the grant flow and the workload routes use of approvals, in one place.
export { approvalStatusFor, type PendingApproval } from './approval-summary.js';

export interface ApprovalDeps {
  db: Database;
  clock: Clock;
  kek: Kek;
  log: Logger;
}

/** The hash an approval binds its parameters by: SHA-256 of their canonical JSON. */
export const paramsHash = (params: Record<string, unknown>) => sha256Hex(canonicalJson(params));

/**
 * Opens an approval request for one step-up: records the step-up decision and the request bound to
 * this workload, task and parameter hash, stages its audit event and notifications, all in one
 * transaction. A task with a delegated approver webhook then asks it (within its timeout).
 */
export async function requestApproval(
  deps: ApprovalDeps,
  r: { principal: Principal; task: CompiledTask; params: Record<string, unknown>; purpose: string | null; decision: Decision; record: DecisionContext },
): Promise<PendingApproval> {
  const now = deps.clock.now();
  const settings = r.task.spec.approval ?? DEFAULT_APPROVAL;
  const approval = await deps.db.transaction().execute(async (trx) => {
    await recordDecision(trx, r.decision, r.record);
    const row = await insertApproval(trx, {
      id: newId(),
      workload_id: r.principal.workload.id,
      workload_owner: r.principal.workload.spec.owner,
      workload_sponsor: r.principal.workload.spec.sponsor ?? null,
      task: r.task.spec.name,
      params: r.params,
      params_sha256: paramsHash(r.params),
      purpose: r.purpose,
      decision_id: r.decision.id,
      required_approvals: settings.required,
      forbid: forbiddenVoters(settings),
      created_at: now,
      expires_at: new Date(now.getTime() + settings.expires_in_seconds * 1000),
    });
    const data = { ...approvalSummary(row, []), reasons: r.decision.reasons };
    await recordAudit(trx, { actor: `workload:${row.workload_id}`, action: 'approval.requested', outcome: 'pending', target_type: 'approval', target_id: row.id, request_id: r.record.requestId, data }, now);
    await stageApprovalEvent(trx, row.id, 'approval.requested', data, now);
    return row;
  });
  if (settings.auto?.webhook) {
    const answer = await askDelegatedApprover(deps, { url: settings.auto.webhook, timeoutMs: settings.auto.timeout_ms }, approval, r.decision);
    if (answer) {
      try {
        const voted = await castVote(deps, { approvalId: approval.id, approver: answer.approver, person: answer.approver, vote: answer.vote, comment: answer.comment, requestId: r.record.requestId });
        return pendingView(voted.approval, voted.votes);
      } catch (err) {
        // A person may have decided first; the request stands as it is.
        if (!(err instanceof TesseraError)) throw err;
        deps.log.warn({ approval_id: approval.id, err: err.message }, 'delegated approver vote not recorded');
      }
    }
  }
  return pendingView(approval, []);
}
