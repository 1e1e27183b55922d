import type { Database } from '../db/database.js';
import type { CompiledTask } from '../config/registry.js';
import type { Principal } from '../identity/authenticate.js';
import type { Decision } from '../decisions/decider.js';
import type { GrantDeps, IssuedGrant } from './grant.service.js';
import { forbidden, TesseraError, unavailable } from '../lib/errors.js';
import { timeOrderedId } from '../lib/ids.js';
import { sha256Hex } from '../lib/hash.js';
import { accessTokenClaims } from './access-token.js';
import { decisionAuditEvent, decisionRow } from '../decisions/decision.repository.js';
import { usageRows } from '../decisions/history.js';
import { pendingAuditRows } from '../audit/audit-outbox.js';
import type { AuditEventInput } from '../audit/audit-event.js';
import { grantDigest } from '../audit/row-digest.js';
import type { NewGrant } from './grant.repository.js';
import { insertMint, type MintOutcome, type TableRows } from './mint.repository.js';
import { grantsMinted } from './grant.metrics.js';
import { statusListUri } from './status-list.service.js';
import { watchOf } from './reevaluation-due.js';

/** One allowed action, validated and decided: what a grant is minted for. */
export interface MintInput {
  task: CompiledTask;
  params: Record<string, unknown>;
  scopes: string[];
  purpose: string | null;
  ttlSeconds: number;
  decision: Decision;
  /** The request as the decision records it (never a token). */
  request: Record<string, unknown>;
  requestId: string;
  /** The step-up approval this grant redeems, if any. */
  approvalId?: string | undefined;
  /** Uses the token allows; defaults to the task's `max_uses`. */
  maxUses?: number | null | undefined;
  /**
   * Runs in the mint transaction after the grant row is inserted (e.g. the approval's conditional
   * redeem): throwing rolls the decision and grant back, and no token leaves.
   */
  inTransaction?: (trx: Database, grant: NewGrant) => Promise<void>;
  /** A delegated child: its parent (which must still be active when the insert commits) and its actor. */
  delegation?: Delegation | undefined;
}

/** What a delegated child carries beyond an ordinary grant. */
export interface Delegation {
  parentId: string;
  /** The RFC 8693 `act` claim: who acts now, with the chain of earlier actors nested inside. */
  act: Record<string, unknown>;
  /** The actor's proven identity, kept with the grant (its token only as a hash). */
  actor: Record<string, unknown> | null;
}

/** Why a write that inserted nothing was refused, as the caller sees it. */
function refusal(outcome: Exclude<MintOutcome, 'inserted'>, workloadId: string): TesseraError {
  if (outcome === 'parent_ended') return new TesseraError(400, 'invalid_grant', 'The parent grant is no longer active.');
  if (outcome === 'key_revoked') return unavailable('the signing key was revoked again right after a key reload');
  return forbidden('The request was denied.', undefined, `workload ${workloadId} is no longer active`);
}

/**
 * Mints a grant: signs the token, then commits decision, grant, usage and audit events together. The
 * token is returned only after the commit. If another replica revoked the signing key since this one
 * last loaded its keys, the write refuses it: the keys are reloaded and the token signed again, once.
 */
export async function mintGrant(deps: GrantDeps, principal: Principal, m: MintInput): Promise<IssuedGrant> {
  const now = deps.clock.now();
  const grantId = timeOrderedId();
  const statusIdx = await deps.statusIndexes.next();
  for (let attempt = 1; ; attempt++) {
    const { token, grant } = await signGrant(deps, principal, m, { grantId, statusIdx, now });
    const outcome = await persist(deps, m, grant, mintRows(principal, m, grant, now));
    if (outcome === 'inserted') {
      grantsMinted.inc({ task: m.task.spec.name });
      return {
        token,
        expiresIn: m.ttlSeconds,
        decision: m.decision,
        grant: { ...grant, status: 'active', ended_at: null, ended_by: null, end_reason: null, end_decision_id: null, use_count: 0, reevaluation_decision_id: null, reevaluated_at: null, reevaluation_failures: 0, reevaluation_retry_at: null },
      };
    }
    if (outcome !== 'key_revoked' || attempt > 1) throw refusal(outcome, principal.workload.id);
    await deps.keys.refresh();
  }
}

const decisionContext = (principal: Principal, m: MintInput, grantId: string, now: Date) => ({
  workloadId: principal.workload.id,
  task: m.task.spec.name,
  requestId: m.requestId,
  request: m.request,
  now,
  ttlSeconds: m.ttlSeconds,
  grantId,
});

/** Signs the token with the current key and builds the grant row around it. */
async function signGrant(deps: GrantDeps, principal: Principal, m: MintInput, ids: { grantId: string; statusIdx: number; now: Date }) {
  const { task, params, scopes, decision } = m;
  const { grantId, statusIdx, now } = ids;
  const expiresAt = new Date(now.getTime() + m.ttlSeconds * 1000);
  const { token, kid } = await deps.keys.sign(
    'at+jwt',
    accessTokenClaims({
      issuer: deps.issuer,
      grantId,
      workloadId: principal.workload.id,
      audience: task.spec.audience,
      scopes,
      task: task.spec.name,
      params,
      issuedAt: now,
      expiresAt,
      decisionId: decision.id,
      act: m.delegation?.act,
      status: { idx: statusIdx, uri: statusListUri(deps.issuer) },
    }),
  );
  const grant: NewGrant = {
    id: grantId,
    workload_id: principal.workload.id,
    task: task.spec.name,
    params,
    scopes,
    audience: task.spec.audience,
    purpose: m.purpose,
    issued_at: now,
    expires_at: expiresAt,
    decision_id: decision.id,
    approval_id: m.approvalId ?? null,
    parent_id: m.delegation?.parentId ?? null,
    max_uses: m.maxUses === undefined ? (task.spec.max_uses ?? null) : m.maxUses,
    cnf_jkt: null,
    kid,
    token_sha256: sha256Hex(token),
    identity: {
      method: principal.method,
      issuer: principal.issuer,
      subject: principal.subject,
      token_sha256: principal.tokenSha256,
      ...(m.delegation && { actor: m.delegation.actor }),
    },
    status_idx: statusIdx,
    ...watchOf(decision.id, decision.signals.used),
  };
  return { token, grant };
}

/**
 * What a mint writes beside the grant row, in the same statement: its decision, the usage baseline, and
 * the decision's and the grant's audit events. The bench's raw-insert limit writes these same rows.
 */
export function mintRows(principal: Principal, m: MintInput, grant: NewGrant, now: Date): TableRows[] {
  const context = decisionContext(principal, m, grant.id, now);
  return [
    { table: 'decisions', rows: [decisionRow(m.decision, context)] },
    { table: 'usage_baseline', rows: usageRows(principal.workload.id, m.task.spec.name, m.params, now, m.task.spec.target), ignoreConflicts: true },
    { table: 'audit_pending', rows: pendingAuditRows([decisionAuditEvent(m.decision, context), mintedEvent(principal, m, grant)], now) },
  ];
}

/** The grant's `grant.minted` audit event: what the row fixes at mint, its token only as a hash. */
function mintedEvent(principal: Principal, m: MintInput, grant: NewGrant): AuditEventInput {
  return {
    actor: `workload:${principal.workload.id}`,
    action: 'grant.minted',
    outcome: 'success',
    target_type: 'grant',
    target_id: grant.id,
    request_id: m.requestId,
    data: {
      task: m.task.spec.name,
      params: m.params,
      scopes: m.scopes,
      audience: m.task.spec.audience,
      expires_at: grant.expires_at.toISOString(),
      decision_id: m.decision.id,
      ...(m.approvalId && { approval_id: m.approvalId }),
      ...(m.delegation && { parent_id: m.delegation.parentId, act: m.delegation.act }),
      kid: grant.kid,
      token_sha256: grant.token_sha256,
      identity: grant.identity,
      // What the row fixes at mint, chained by its hash: an edit of the grants row shows in verify and the trail.
      row_sha256: grantDigest(grant),
    },
  };
}

/**
 * Decision, grant, usage and audit events are written by one statement, all or nothing (one round
 * trip instead of seven), shared with the mints that commit in the same turn (MintWriter). A hook that
 * must commit with them (an approval's redeem) gets a transaction of its own around both, and runs
 * only if the statement inserted.
 */
async function persist(deps: GrantDeps, m: MintInput, grant: NewGrant, extra: Parameters<typeof insertMint>[2]): Promise<MintOutcome> {
  const hook = m.inTransaction;
  if (!hook) return deps.mints.write(grant, extra);
  return deps.db.transaction().execute(async (trx) => {
    const outcome = await insertMint(trx, grant, extra);
    if (outcome === 'inserted') await hook(trx, grant);
    return outcome;
  });
}
