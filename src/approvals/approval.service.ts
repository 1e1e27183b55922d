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
import { insertApproval, type ApprovalRow, type VoteRow } from './approval.repository.js';
import { approvalSummary, pendingView, type PendingApproval } from './approval-summary.js';
import { castVote } from './cast-vote.js';
import { stageApprovalEvent } from './approval-webhook.js';
import { askDelegatedApprover, type DelegatedAnswer } from './delegated-approver.js';

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
 * transaction. It needs the task's `approval.required` approvals, or more where the step-up policy's
 * `@approvals` says so. Then the delegated approvers answer, each as a vote through castVote like a
 * person's: the `@auto_approve` policies' answer (decided with the step-up), then the task's webhook
 * (within its timeout), while the request is still pending.
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
      required_approvals: Math.max(settings.required, r.decision.requiredApprovals ?? 1),
      forbid: forbiddenVoters(settings),
      created_at: now,
      expires_at: new Date(now.getTime() + settings.expires_in_seconds * 1000),
    });
    const data = { ...approvalSummary(row, []), reasons: r.decision.reasons };
    await recordAudit(trx, { actor: `workload:${row.workload_id}`, action: 'approval.requested', outcome: 'pending', target_type: 'approval', target_id: row.id, request_id: r.record.requestId, data }, now);
    await stageApprovalEvent(trx, row.id, 'approval.requested', data, now);
    return row;
  });
  const policy = r.decision.approver;
  const delegated: Array<() => Promise<DelegatedAnswer | undefined>> = [
    async () => policy && { approver: `policy:${policy.policy}`, vote: policy.vote, comment: policy.reason },
    async () => (settings.auto?.webhook ? askDelegatedApprover(deps, { url: settings.auto.webhook, timeoutMs: settings.auto.timeout_ms }, approval, r.decision) : undefined),
  ];
  let current: { approval: ApprovalRow; votes: VoteRow[] } = { approval, votes: [] };
  for (const ask of delegated) {
    if (current.approval.status !== 'pending') break;
    const answer = await ask();
    if (!answer) continue;
    try {
      current = await castVote(deps, { approvalId: approval.id, approver: answer.approver, person: answer.approver, vote: answer.vote, comment: answer.comment, requestId: r.record.requestId });
    } catch (err) {
      // A person may have decided first; the request stands as it is.
      if (!(err instanceof TesseraError)) throw err;
      deps.log.warn({ approval_id: approval.id, approver: answer.approver, err: err.message }, 'delegated approver vote not recorded');
    }
  }
  return pendingView(current.approval, current.votes);
}
