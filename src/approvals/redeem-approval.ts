import type { Principal } from '../identity/authenticate.js';
import type { Decision } from '../decisions/decider.js';
import { findDecision, recordDecision, type DecisionRow } from '../decisions/decision.repository.js';
import { recordAudit } from '../audit/audit-outbox.js';
import { epochSeconds } from '../lib/clock.js';
import { conflict, forbidden, notFound, TesseraError } from '../lib/errors.js';
import { parseTaskParams, taskNamed, type GrantDeps, type IssuedGrant } from '../grants/grant.service.js';
import { mintGrant } from '../grants/mint-grant.js';
import { changeApprovalStatus, findApproval, votesOf, type ApprovalRow } from './approval.repository.js';
import { paramsHash } from './approval.service.js';

/** A redeemed approval's token works once: it was approved for one action. */
const REDEEMED_MAX_USES = 1;

const staleIdentity = (logDetail: string) =>
  new TesseraError(403, 'stale_identity', 'Redeem with a fresh identity token: one issued after the approval was requested, not the one that asked.', { logDetail });

/**
 * The identity proof must be new: an OIDC or SPIFFE token can be presented again within its lifetime,
 * so neither the exact token that opened the request (its hash is on the step-up decision) nor any
 * token issued before the request was made redeems it.
 */
function checkFreshIdentity(principal: Principal, approval: ApprovalRow, stepUp: DecisionRow): void {
  const opener = (stepUp.signals as { identity?: { token_sha256?: string } }).identity?.token_sha256;
  if (opener && opener === principal.tokenSha256) throw staleIdentity('the identity token that opened the request was presented again');
  const iat = principal.claims.iat;
  if (typeof iat !== 'number' || iat < epochSeconds(approval.created_at)) throw staleIdentity(`identity token issued at ${String(iat)}, before the approval`);
}

/**
 * Redeems an approved request: the same workload, proven afresh, with the same task and parameters,
 * gets a single-use grant for that one action. The request is decided again under the policy,
 * signals and registry in force now: the approval settles the step-up, not a forbid that applies
 * since (a new policy version, a rate spike, an untrusted runner), nor a step-up that now asks for
 * more approvals than were given. The approval moves `approved → redeemed` in the mint transaction,
 * conditionally, so of two concurrent redeems exactly one commits a grant.
 */
export async function redeemApproval(
  deps: GrantDeps,
  principal: Principal,
  r: { approvalId: string; task?: string | undefined; params: Record<string, unknown>; requestId: string },
): Promise<IssuedGrant> {
  const now = deps.clock.now();
  const approval = await findApproval(deps.db, r.approvalId);
  // Another workload's approval is as unknown to it as one that does not exist.
  if (!approval || approval.workload_id !== principal.workload.id) throw notFound('Approval');
  if (approval.status === 'pending') throw new TesseraError(409, 'approval_pending', 'The approval is still pending.', { extra: { status: approval.status } });
  if (approval.status !== 'approved') throw conflict(`The approval is ${approval.status}.`, { status: approval.status });
  if (approval.expires_at <= now) throw conflict('The approval has expired.', { status: 'expired' });
  const task = taskNamed(deps, approval.task);
  if ((r.task ?? approval.task) !== approval.task || paramsHash(parseTaskParams(task, r.params)) !== approval.params_sha256) {
    throw new TesseraError(403, 'approval_mismatch', 'The request differs from the approved one: same task and parameters only.');
  }
  const stepUp = await findDecision(deps.db, approval.decision_id);
  if (!stepUp) throw conflict('The approval has no decision on record.');
  checkFreshIdentity(principal, approval, stepUp);

  const asked = stepUp.request as { scopes?: string[]; ttl_seconds?: number | null };
  const params = approval.params;
  const scopes = asked.scopes?.length ? asked.scopes : task.spec.scopes;
  const request = { task: task.spec.name, params, purpose: approval.purpose, approval_id: approval.id, scopes };
  const current = await deps.decide({ principal, task, params, purpose: approval.purpose, requestId: r.requestId }, now);
  if (current.outcome === 'deny' || (current.outcome === 'step_up' && (current.requiredApprovals ?? 1) > approval.required_approvals)) {
    const record = { workloadId: principal.workload.id, task: task.spec.name, requestId: r.requestId, request, now, ttlSeconds: null, grantId: null };
    await deps.db.transaction().execute((trx) => recordDecision(trx, current, record));
    if (current.outcome === 'deny') throw forbidden('The request is no longer allowed.', { decision_id: current.id, reasons: current.reasons });
    throw new TesseraError(403, 'approval_insufficient', `Policy now asks for ${current.requiredApprovals} approvals; this request had ${approval.required_approvals}. Ask again.`, {
      extra: { decision_id: current.id },
    });
  }
  const approvers = (await votesOf(deps.db, approval.id)).filter((v) => v.vote === 'approve').map((v) => v.approver);
  const maxTtlSeconds = Math.min(stepUp.max_ttl_seconds ?? Infinity, current.maxTtlSeconds ?? Infinity);
  // The decision of this redeem: today's policy and signals (so a signal change re-evaluates the grant), allowed by the approval.
  const decision: Decision = {
    ...current,
    outcome: 'allow',
    reasons: [`approved by ${approvers.join(', ')}`],
    maxTtlSeconds: Number.isFinite(maxTtlSeconds) ? maxTtlSeconds : undefined,
    approver: undefined,
  };
  const ttl = Math.min(asked.ttl_seconds ?? task.spec.default_ttl_seconds, task.spec.max_ttl_seconds, maxTtlSeconds);
  return mintGrant(deps, principal, {
    task,
    params,
    scopes,
    purpose: approval.purpose,
    ttlSeconds: ttl,
    decision,
    request,
    requestId: r.requestId,
    approvalId: approval.id,
    maxUses: REDEEMED_MAX_USES,
    async inTransaction(trx, grant) {
      const redeemed = await changeApprovalStatus(trx, approval.id, 'approved', 'redeemed', { redeemed_at: now, grant_id: grant.id }, now);
      if (!redeemed) throw conflict('The approval was already redeemed or has expired.', { status: 'redeemed' });
      await recordAudit(
        trx,
        { actor: `workload:${principal.workload.id}`, action: 'approval.redeemed', outcome: 'success', target_type: 'approval', target_id: approval.id, request_id: r.requestId, data: { grant_id: grant.id, decision_id: decision.id } },
        now,
      );
    },
  });
}
