import { Router } from 'express';
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import { findApproval, listApprovals, votesOf, votesOfEach, type ApprovalRow, type VoteRow } from '../../approvals/approval.repository.js';
import { castVote } from '../../approvals/cast-vote.js';
import { approvalSummary } from '../../approvals/approval-summary.js';
import { createApprovalWebhook } from '../../approvals/approval-webhook.js';
import { findDecision } from '../../decisions/decision.repository.js';
import { notFound } from '../../lib/errors.js';
import { parseOrThrow } from '../../lib/validation.js';
import { actorOf, adminWrite } from './admin-action.js';
import { adminOf } from './admin-auth.js';
import { mountAdminRoute } from './admin-route.js';
import { decisionView } from './decisions.routes.js';
import { createdAtCursor, pageQuery, paginate } from './pagination.js';
import { ADMIN_ROUTES } from './route-roles.js';

const listQuery = z.strictObject({
  status: z.enum(['pending', 'approved', 'denied', 'expired', 'redeemed']).optional(),
  workload: z.string().min(1).max(256).optional(),
  ...pageQuery,
});
const voteBody = z.strictObject({ comment: z.string().trim().max(1024).optional() });
const webhookBody = z.strictObject({ url: z.url({ protocol: /^https?$/ }).max(2048) });
const uuid = z.uuid();

/** The admin view of an approval: what notifications carry, and who may not vote and how it ended. */
export function approvalView(a: ApprovalRow, votes: VoteRow[]) {
  const { workload, ...summary } = approvalSummary(a, votes);
  return {
    ...summary,
    workload_id: workload,
    workload_owner: a.workload_owner,
    workload_sponsor: a.workload_sponsor,
    forbid: a.forbid,
    redeemed_at: a.redeemed_at?.toISOString() ?? null,
    grant_id: a.grant_id,
  };
}

async function approvalOr404(deps: Deps, id: string): Promise<ApprovalRow> {
  const a = uuid.safeParse(id).success ? await findApproval(deps.db, id) : undefined;
  if (!a) throw notFound('Approval');
  return a;
}

/** Step-up approvals for people: list, read in full (with the decision behind it), approve, deny; notification receivers. */
export function adminApprovalRoutes(deps: Deps): Router {
  const r = Router();
  mountAdminRoute(r, deps, ADMIN_ROUTES.listApprovals, async (req, res) => {
    const q = parseOrThrow(listQuery, req.query, 'The query');
    const page = await paginate(q, createdAtCursor, (after, take) => listApprovals(deps.db, q, after, take), (a) => ({ created_at: a.created_at.toISOString(), id: a.id }));
    // One query for the votes of the whole page, not one per approval.
    const votes = await votesOfEach(deps.db, page.items.map((a) => a.id));
    res.json({ items: page.items.map((a) => approvalView(a, votes.get(a.id) ?? [])), next_cursor: page.next_cursor });
  });

  mountAdminRoute(r, deps, ADMIN_ROUTES.getApproval, async (req, res) => {
    const a = await approvalOr404(deps, String(req.params.id));
    const [votes, decision] = await Promise.all([votesOf(deps.db, a.id), findDecision(deps.db, a.decision_id)]);
    res.json({ ...approvalView(a, votes), decision: decision ? decisionView(decision) : null });
  });

  for (const [route, vote] of [[ADMIN_ROUTES.approveApproval, 'approve'], [ADMIN_ROUTES.denyApproval, 'deny']] as const) {
    mountAdminRoute(r, deps, route, async (req, res) => {
      const { comment } = parseOrThrow(voteBody, req.body ?? {}, 'The vote');
      const a = await approvalOr404(deps, String(req.params.id));
      const voted = await castVote(deps, { approvalId: a.id, approver: actorOf(res), person: adminOf(res).person, vote, comment: comment || null, requestId: String(res.locals.requestId ?? '') });
      res.json(approvalView(voted.approval, voted.votes));
    });
  }

  mountAdminRoute(r, deps, ADMIN_ROUTES.createApprovalWebhook, async (req, res) => {
    const { url } = parseOrThrow(webhookBody, req.body, 'The approval webhook');
    const created = await adminWrite(deps, res, { action: ADMIN_ROUTES.createApprovalWebhook.audit, target_type: 'approval_webhook', target_id: '' }, async (trx, actor) => {
      const hook = await createApprovalWebhook(trx, deps.kek, { url, createdBy: actor }, deps.clock.now());
      return { result: hook, data: { url }, target_id: hook.id };
    });
    // The secret is shown once: the receiver verifies signatures with it; the broker keeps it sealed.
    res.setHeader('Cache-Control', 'no-store').status(201).json({ id: created.id, url: created.url, created_at: created.created_at.toISOString(), secret: created.secret });
  });
  return r;
}
