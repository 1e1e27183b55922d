import type { Database } from '../db/database.js';
import type { Clock } from '../lib/clock.js';
import { recordAudit } from '../audit/audit-outbox.js';
import { conflict, notFound, TesseraError } from '../lib/errors.js';
import { changeApprovalStatus, findApproval, insertVote, votesOf, type ApprovalRow, type VoteRow } from './approval.repository.js';
import { stageApprovalEvent } from './approval-webhook.js';
import { approvalsIn, approvalSummary } from './approval-summary.js';
import type { ApprovalForbid, Vote } from './approval.table.js';

export interface VoteInput {
  approvalId: string;
  /** `admin:<name>`, `webhook:<host>` or `policy:<id>`: what the vote and its audit event are attributed to. */
  approver: string;
  /** The person behind it (a delegated approver is its own approver string): compared case-insensitively. */
  person: string;
  vote: Vote;
  comment?: string | null | undefined;
  requestId: string | null;
}

/** People compare equal whatever the case and the spaces around them: `Alice@Example.com` is alice@example.com. */
export const samePerson = (a: string, b: string) => a.trim().toLowerCase() === b.trim().toLowerCase();

/** Which rule, if any, refuses this person's vote on this request. */
function forbiddenAs(a: ApprovalRow, person: string): ApprovalForbid | undefined {
  const related: Record<ApprovalForbid, string | null> = { owner: a.workload_owner, sponsor: a.workload_sponsor };
  return a.forbid.find((rule) => related[rule] !== null && samePerson(related[rule], person));
}

/**
 * Records one vote. The approval row is locked, so votes count one at a time: a deny decides at once;
 * approvals decide when `required_approvals` different people agreed. Refused: a decided or expired
 * request (409), a second vote by the same person through any key or login (409), the workload's owner
 * or sponsor where the task forbids them (403, `self_approval_forbidden`).
 */
export async function castVote(deps: { db: Database; clock: Clock }, v: VoteInput): Promise<{ approval: ApprovalRow; votes: VoteRow[] }> {
  const now = deps.clock.now();
  const person = v.person.trim().toLowerCase();
  return deps.db.transaction().execute(async (trx) => {
    const a = await findApproval(trx, v.approvalId, true);
    if (!a) throw notFound('Approval');
    if (a.status !== 'pending') throw conflict(`The approval is ${a.status}.`, { status: a.status });
    if (a.expires_at <= now) throw conflict('The approval has expired.', { status: 'expired' });
    const forbidden = forbiddenAs(a, person);
    if (forbidden) {
      throw new TesseraError(403, 'self_approval_forbidden', `The ${forbidden} of workload ${a.workload_id} may not vote on its requests.`, { logDetail: `${v.approver} is ${person}` });
    }
    if (!(await insertVote(trx, { approval_id: a.id, approver: v.approver, person, vote: v.vote, comment: v.comment ?? null, at: now }))) {
      throw conflict(`${person} has already voted on this approval.`, { status: a.status });
    }
    const votes = await votesOf(trx, a.id);
    const approvals = approvalsIn(votes);
    const decided = v.vote === 'deny' ? 'denied' : approvals >= a.required_approvals ? 'approved' : undefined;
    const current = decided ? ((await changeApprovalStatus(trx, a.id, 'pending', decided, { decided_at: now })) ?? a) : a;
    const audit = { actor: v.approver, target_type: 'approval', target_id: a.id, request_id: v.requestId };
    await recordAudit(trx, { ...audit, action: 'approval.voted', outcome: v.vote, data: { vote: v.vote, person, comment: v.comment ?? null, approvals, required_approvals: a.required_approvals } }, now);
    if (decided) {
      const data = approvalSummary(current, votes);
      await recordAudit(trx, { ...audit, action: `approval.${decided}`, outcome: 'success', data }, now);
      await stageApprovalEvent(trx, a.id, `approval.${decided}`, data, now);
    }
    return { approval: current, votes };
  });
}
