import type { Principal } from '../identity/authenticate.js';
import type { Decision } from '../decisions/decider.js';
import { identitySummary } from '../decisions/decider.js';
import { findDecision } from '../decisions/decision.repository.js';
import { recordAudit } from '../audit/audit-outbox.js';
import { conflict, notFound, TesseraError } from '../lib/errors.js';
import { newId } from '../lib/ids.js';
import { parseTaskParams, taskNamed, type GrantDeps, type IssuedGrant } from '../grants/grant.service.js';
import { mintGrant } from '../grants/mint-grant.js';
import { changeApprovalStatus, findApproval, votesOf } from './approval.repository.js';
import { paramsHash } from './approval.service.js';

/** A redeemed approval's token works once: it was approved for one action. */
const REDEEMED_MAX_USES = 1;

/**
 * Redeems an approved request: the same workload, proven afresh, with the same task and parameters,
 * gets a single-use grant for that one action. The approval moves `approved → redeemed` in the mint
 * transaction, conditionally, so of two concurrent redeems exactly one commits a grant.
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
  const asked = stepUp.request as { scopes?: string[]; ttl_seconds?: number | null };
  const approvers = (await votesOf(deps.db, approval.id)).filter((v) => v.vote === 'approve').map((v) => v.approver);
  const snap = deps.registry.snapshot;
  const decision: Decision = {
    id: newId(),
    outcome: 'allow',
    reasons: [`approved by ${approvers.join(', ')}`],
    errors: [],
    determining: [],
    maxTtlSeconds: stepUp.max_ttl_seconds ?? undefined,
    policyVersion: snap.policies?.version ?? null,
    configVersion: snap.configVersion,
    // The step-up's signals, so a signal change re-evaluates this grant too; the fresh identity proof.
    signals: { ...(stepUp.signals as Decision['signals']), identity: identitySummary(principal) },
    latencyUs: 0,
  };
  const scopes = asked.scopes?.length ? asked.scopes : task.spec.scopes;
  const ttl = Math.min(asked.ttl_seconds ?? task.spec.default_ttl_seconds, task.spec.max_ttl_seconds, decision.maxTtlSeconds ?? Infinity);
  const params = approval.params;
  return mintGrant(deps, principal, {
    task,
    params,
    scopes,
    purpose: approval.purpose,
    ttlSeconds: ttl,
    decision,
    request: { task: task.spec.name, params, purpose: approval.purpose, approval_id: approval.id, scopes },
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
