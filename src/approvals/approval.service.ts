import type { Logger } from 'pino';
import type { Database } from '../db/database.js';
import type { Clock } from '../lib/clock.js';
import type { Kek } from '../keys/kek.js';
import type { CompiledTask } from '../config/registry.js';
import type { Principal } from '../identity/authenticate.js';
import type { Decision } from '../decisions/decider.js';
import { DEFAULT_APPROVAL } from '../config/spec.js';
import { recordDecision, type DecisionContext } from '../decisions/decision.repository.js';
import { recordAudit } from '../audit/audit-outbox.js';
import { canonicalJson, sha256Hex } from '../lib/hash.js';
import { newId } from '../lib/ids.js';
import { conflict, notFound, TesseraError } from '../lib/errors.js';
import { changeApprovalStatus, findApproval, insertApproval, insertVote, votesOf, type ApprovalRow, type VoteRow } from './approval.repository.js';
import { stageApprovalEvent } from './approval-webhook.js';
import { askDelegatedApprover } from './delegated-approver.js';
import type { Vote } from './approval.table.js';

export interface ApprovalDeps {
  db: Database;
  clock: Clock;
  kek: Kek;
  log: Logger;
}

/** What the workload learns about its approval request: status and progress, never who voted or why. */
export interface PendingApproval {
  id: string;
  status: ApprovalRow['status'];
  required_approvals: number;
  approvals: number;
  expires_at: Date;
}

/** The hash an approval binds its parameters by: SHA-256 of their canonical JSON. */
export const paramsHash = (params: Record<string, unknown>) => sha256Hex(canonicalJson(params));

/** An approval and its votes, as notifications and audit events carry it. */
export function approvalSummary(a: ApprovalRow, votes: VoteRow[]) {
  return {
    id: a.id,
    workload: a.workload_id,
    task: a.task,
    params: a.params,
    params_sha256: a.params_sha256,
    purpose: a.purpose,
    status: a.status,
    required_approvals: a.required_approvals,
    approvals: votes.filter((v) => v.vote === 'approve').length,
    votes: votes.map((v) => ({ approver: v.approver, vote: v.vote, comment: v.comment, at: v.at.toISOString() })),
    decision_id: a.decision_id,
    created_at: a.created_at.toISOString(),
    expires_at: a.expires_at.toISOString(),
    decided_at: a.decided_at?.toISOString() ?? null,
  };
}

const pendingView = (a: ApprovalRow, votes: VoteRow[]): PendingApproval => ({
  id: a.id,
  status: a.status,
  required_approvals: a.required_approvals,
  approvals: votes.filter((v) => v.vote === 'approve').length,
  expires_at: a.expires_at,
});

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
      task: r.task.spec.name,
      params: r.params,
      params_sha256: paramsHash(r.params),
      purpose: r.purpose,
      decision_id: r.decision.id,
      required_approvals: settings.required,
      forbid_owner: settings.forbid_owner,
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
        const voted = await castVote(deps, { approvalId: approval.id, approver: answer.approver, vote: answer.vote, comment: answer.comment, requestId: r.record.requestId });
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

export interface VoteInput {
  approvalId: string;
  /** `admin:<key name>`, `webhook:<host>` or `policy:<id>`. */
  approver: string;
  vote: Vote;
  comment?: string | null | undefined;
  requestId: string | null;
}

/** The name a person approves as: the admin key's name, compared with the workload's owner (forbid_owner). */
const personOf = (approver: string) => (approver.startsWith('admin:') ? approver.slice('admin:'.length) : undefined);

/**
 * Records one vote. The approval row is locked, so votes count one at a time: a deny decides at once;
 * approvals decide when `required_approvals` different approvers agreed. Refused: a decided or expired
 * request (409), a second vote by the same approver (409), the workload's owner when the task forbids
 * it (403, `self_approval_forbidden`).
 */
export async function castVote(deps: Pick<ApprovalDeps, 'db' | 'clock'>, v: VoteInput): Promise<{ approval: ApprovalRow; votes: VoteRow[] }> {
  const now = deps.clock.now();
  return deps.db.transaction().execute(async (trx) => {
    const a = await findApproval(trx, v.approvalId, true);
    if (!a) throw notFound('Approval');
    if (a.status !== 'pending') throw conflict(`The approval is ${a.status}.`, { status: a.status });
    if (a.expires_at <= now) throw conflict('The approval has expired.', { status: 'expired' });
    if (a.forbid_owner && personOf(v.approver) === a.workload_owner) {
      throw new TesseraError(403, 'self_approval_forbidden', `The owner of workload ${a.workload_id} may not approve its requests.`);
    }
    if (!(await insertVote(trx, { approval_id: a.id, approver: v.approver, vote: v.vote, comment: v.comment ?? null, at: now }))) {
      throw conflict('This approver has already voted on this approval.', { status: a.status });
    }
    const votes = await votesOf(trx, a.id);
    const approvals = votes.filter((x) => x.vote === 'approve').length;
    const decided = v.vote === 'deny' ? 'denied' : approvals >= a.required_approvals ? 'approved' : undefined;
    const current = decided ? ((await changeApprovalStatus(trx, a.id, 'pending', decided, { decided_at: now })) ?? a) : a;
    const audit = { actor: v.approver, target_type: 'approval', target_id: a.id, request_id: v.requestId };
    await recordAudit(trx, { ...audit, action: 'approval.voted', outcome: v.vote, data: { vote: v.vote, comment: v.comment ?? null, approvals, required_approvals: a.required_approvals } }, now);
    if (decided) {
      const data = approvalSummary(current, votes);
      await recordAudit(trx, { ...audit, action: `approval.${decided}`, outcome: 'success', data }, now);
      await stageApprovalEvent(trx, a.id, `approval.${decided}`, data, now);
    }
    return { approval: current, votes };
  });
}

/** The workload's view of its own approval, or 404 for any other workload (the two are not told apart). */
export async function approvalStatusFor(db: Database, id: string, workloadId: string): Promise<PendingApproval> {
  const a = await findApproval(db, id);
  if (!a || a.workload_id !== workloadId) throw notFound('Approval');
  return pendingView(a, await votesOf(db, id));
}
