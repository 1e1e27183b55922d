import type { Deps } from '../deps.js';
import type { PendingGrant } from '../grants/grant.service.js';

/** How often a waiting workload should poll its approval (seconds); the CLI uses the same. */
export const APPROVAL_POLL_INTERVAL_SECONDS = 2;

/** Where a workload polls and redeems its approval. */
export const approvalLinks = (deps: Pick<Deps, 'issuer'>, id: string) => ({
  poll: `${deps.issuer}/v1/approvals/${id}`,
  redeem: `${deps.issuer}/v1/approvals/${id}/redeem`,
});

/** The workload's answer to a step-up, on /v1/grants (202 body) and /oauth2/token (error extras). */
export function pendingResponse(deps: Pick<Deps, 'issuer'>, p: PendingGrant) {
  return {
    approval_id: p.approval.id,
    status: p.approval.status,
    approvals: p.approval.approvals,
    required_approvals: p.approval.required_approvals,
    expires_at: p.approval.expires_at.toISOString(),
    decision_id: p.decision.id,
    reasons: p.decision.reasons,
    interval: APPROVAL_POLL_INTERVAL_SECONDS,
    ...approvalLinks(deps, p.approval.id),
  };
}

