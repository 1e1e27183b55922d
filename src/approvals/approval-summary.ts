import type { Database } from '../db/database.js';
import { notFound } from '../lib/errors.js';
import { findApproval, votesOf, type ApprovalRow, type VoteRow } from './approval.repository.js';

/** What the workload learns about its approval request: status and progress, never who voted or why. */
export interface PendingApproval {
  id: string;
  status: ApprovalRow['status'];
  required_approvals: number;
  approvals: number;
  expires_at: Date;
}

/** How many of the votes approve. */
export const approvalsIn = (votes: VoteRow[]) => votes.filter((v) => v.vote === 'approve').length;

/** The votes as admins, audit events and notifications show them. */
export const voteViews = (votes: VoteRow[]) => votes.map((v) => ({ approver: v.approver, person: v.person, vote: v.vote, comment: v.comment, at: v.at.toISOString() }));

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
    approvals: approvalsIn(votes),
    votes: voteViews(votes),
    decision_id: a.decision_id,
    created_at: a.created_at.toISOString(),
    expires_at: a.expires_at.toISOString(),
    decided_at: a.decided_at?.toISOString() ?? null,
  };
}

export const pendingView = (a: ApprovalRow, votes: VoteRow[]): PendingApproval => ({
  id: a.id,
  status: a.status,
  required_approvals: a.required_approvals,
  approvals: approvalsIn(votes),
  expires_at: a.expires_at,
});

/** The workload's view of its own approval, or 404 for any other workload (the two are not told apart). */
export async function approvalStatusFor(db: Database, id: string, workloadId: string): Promise<PendingApproval> {
  const a = await findApproval(db, id);
  if (!a || a.workload_id !== workloadId) throw notFound('Approval');
  return pendingView(a, await votesOf(db, id));
}
