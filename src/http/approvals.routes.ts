import { Router } from 'express';
import { z } from 'zod';
import { authContext, type Deps } from '../deps.js';
import { authenticateWorkload } from '../identity/authenticate.js';
import { approvalStatusFor } from '../approvals/approval.service.js';
import { redeemApproval } from '../approvals/redeem-approval.js';
import { notFound } from '../lib/errors.js';
import { parseOrThrow } from '../lib/validation.js';
import { bearerToken } from './bearer.js';
import { grantResponse, noStore } from './grants.routes.js';
import { approvalLinks } from './approval-response.js';

const redeemBody = z.strictObject({
  task: z.string().min(1).max(128).optional(),
  params: z.record(z.string(), z.unknown()).default({}),
});
const uuid = z.uuid();

/** Workload endpoints of a step-up: poll its status, redeem it once approved. Both need a fresh identity token. */
export function approvalRoutes(deps: Deps): Router {
  const r = Router();
  r.get('/v1/approvals/:id', async (req, res) => {
    const principal = await authenticateWorkload(bearerToken(req), authContext(deps));
    if (!uuid.safeParse(req.params.id).success) throw notFound('Approval');
    const a = await approvalStatusFor(deps.db, String(req.params.id), principal.workload.id);
    noStore(res).json({
      approval_id: a.id,
      status: a.status,
      approvals: a.approvals,
      required_approvals: a.required_approvals,
      expires_at: a.expires_at.toISOString(),
      ...approvalLinks(deps, a.id),
    });
  });

  r.post('/v1/approvals/:id/redeem', async (req, res) => {
    const body = parseOrThrow(redeemBody, req.body, 'The redemption');
    const principal = await authenticateWorkload(bearerToken(req), authContext(deps));
    if (!uuid.safeParse(req.params.id).success) throw notFound('Approval');
    const issued = await redeemApproval(deps, principal, { approvalId: String(req.params.id), task: body.task, params: body.params, requestId: res.locals.requestId as string });
    noStore(res).status(201).json({ ...grantResponse(issued), approval_id: req.params.id });
  });
  return r;
}
