import type { Database } from '../db/database.js';
import { findDecision, type DecisionRow } from '../decisions/decision.repository.js';
import { findApproval, votesOf } from '../approvals/approval.repository.js';
import { approvalSummary } from '../approvals/approval-summary.js';
import { findGrant, type GrantRow } from '../grants/grant.repository.js';
import type { AuditEvent } from './audit-event.js';
import { AUDIT_EVENT_COLUMNS } from './audit.repository.js';
import { decisionDigest, grantDigest } from './row-digest.js';
import { rowIntegrity } from './verify-rows.js';

/** Descendants reached by delegation, at most this deep (tasks cap delegation depth far lower). */
const MAX_TRAIL_DEPTH = 10;

const grantView = (g: GrantRow) => ({
  id: g.id,
  workload: g.workload_id,
  task: g.task,
  params: g.params,
  scopes: g.scopes,
  audience: g.audience,
  purpose: g.purpose,
  status: g.status,
  issued_at: g.issued_at.toISOString(),
  expires_at: g.expires_at.toISOString(),
  ended_at: g.ended_at?.toISOString() ?? null,
  ended_by: g.ended_by,
  end_reason: g.end_reason,
  parent_id: g.parent_id,
  approval_id: g.approval_id,
  decision_id: g.decision_id,
  use_count: g.use_count,
  max_uses: g.max_uses,
  kid: g.kid,
});

const decisionView = (d: DecisionRow) => ({
  id: d.id,
  outcome: d.outcome,
  reasons: d.reasons,
  determining_policies: d.determining,
  policy_version: d.policy_version,
  config_version: d.config_version,
  signals: d.signals,
  created_at: d.created_at.toISOString(),
});

/**
 * One grant's whole story as one chain: the identity that asked, the decision with its signals and
 * policy version, approvals, the grant, its delegated children, its uses, and how it ended, with the
 * audit events (and their chain hashes) that record each step.
 */
export async function grantTrail(db: Database, grantId: string) {
  const grant = await findGrant(db, grantId);
  if (!grant) return undefined;
  const decision = grant.decision_id ? await findDecision(db, grant.decision_id) : undefined;
  const approval = grant.approval_id ? await findApproval(db, grant.approval_id) : undefined;
  // A redeemed step-up has two decisions: the step_up that opened the approval, and the allow that minted.
  const stepUp = approval ? await findDecision(db, approval.decision_id) : undefined;
  const children: GrantRow[] = [];
  let frontier = [grant.id];
  for (let depth = 0; depth < MAX_TRAIL_DEPTH && frontier.length; depth++) {
    const next = await db.selectFrom('grants').selectAll().where('parent_id', 'in', frontier).orderBy('issued_at').execute();
    children.push(...next);
    frontier = next.map((c) => c.id);
  }
  const targets = [
    ['grant', grant.id],
    ...(grant.decision_id ? [['decision', grant.decision_id]] : []),
    ...(approval ? [['approval', approval.id], ['decision', approval.decision_id]] : []),
    ...children.map((c) => ['grant', c.id]),
  ];
  const events = (await db
    .selectFrom('audit_events')
    .select(AUDIT_EVENT_COLUMNS)
    .where((eb) => eb.or(targets.map(([type, id]) => eb.and([eb('target_type', '=', type!), eb('target_id', '=', id!)]))))
    .orderBy('seq')
    .execute()) as unknown as AuditEvent[];
  const chained = (action: string, id: string) => events.find((e) => e.action === action && e.target_id === id);
  return {
    // The decision and grant below are served from their tables; these say whether each still matches
    // the digest the chain recorded when it was written (`edited` means someone changed it since).
    integrity: {
      decision: decision ? rowIntegrity(decisionDigest(decision), chained('decision.recorded', decision.id)) : null,
      step_up_decision: stepUp ? rowIntegrity(decisionDigest(stepUp), chained('decision.recorded', stepUp.id)) : null,
      grant: rowIntegrity(grantDigest(grant), chained('grant.minted', grant.id)),
    },
    identity: grant.identity,
    decision: decision ? decisionView(decision) : null,
    approval: approval ? { ...approvalSummary(approval, await votesOf(db, approval.id)), step_up_decision: stepUp ? decisionView(stepUp) : null } : null,
    grant: grantView(grant),
    children: children.map(grantView),
    uses: events.filter((e) => e.action === 'grant.used' && e.target_id === grant.id).map((e) => ({ at: e.at, actor: e.actor, ...e.data })),
    ended: grant.status === 'active' ? null : { status: grant.status, at: grant.ended_at?.toISOString(), by: grant.ended_by, reason: grant.end_reason },
    events: events.map((e) => ({ seq: e.seq, at: e.at, actor: e.actor, action: e.action, target_type: e.target_type, target_id: e.target_id, request_id: e.request_id, outcome: e.outcome, data: e.data, hash: e.hash })),
  };
}
