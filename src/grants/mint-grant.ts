import type { Database } from '../db/database.js';
import type { CompiledTask } from '../config/registry.js';
import type { Principal } from '../identity/authenticate.js';
import type { Decision } from '../decisions/decider.js';
import type { GrantDeps, IssuedGrant } from './grant.service.js';
import { forbidden } from '../lib/errors.js';
import { newId } from '../lib/ids.js';
import { sha256Hex } from '../lib/hash.js';
import { accessTokenClaims } from './access-token.js';
import { decisionAuditEvent, decisionRow } from '../decisions/decision.repository.js';
import { usageRows } from '../decisions/history.js';
import { pendingAuditRows } from '../audit/audit-outbox.js';
import type { AuditEventInput } from '../audit/audit-event.js';
import { grantDigest } from '../audit/row-digest.js';
import type { NewGrant } from './grant.repository.js';
import { insertMint } from './mint.repository.js';
import { grantsMinted } from './grant.metrics.js';
import { statusListUri } from './status-list.service.js';

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
}

/**
 * Mints a grant: signs the token, then commits decision, grant, usage and audit events together. The
 * token is returned only after the commit.
 */
export async function mintGrant(deps: GrantDeps, principal: Principal, m: MintInput): Promise<IssuedGrant> {
  const now = deps.clock.now();
  const { task, params, scopes, decision } = m;
  const grantId = newId();
  const expiresAt = new Date(now.getTime() + m.ttlSeconds * 1000);
  const statusIdx = await deps.statusIndexes.next();
  const { token, kid } = deps.keys.sign(
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
    parent_id: null,
    max_uses: m.maxUses === undefined ? (task.spec.max_uses ?? null) : m.maxUses,
    cnf_jkt: null,
    kid,
    token_sha256: sha256Hex(token),
    identity: { method: principal.method, issuer: principal.issuer, subject: principal.subject, token_sha256: principal.tokenSha256 },
    status_idx: statusIdx,
  };
  const decisionContext = { workloadId: principal.workload.id, task: task.spec.name, requestId: m.requestId, request: m.request, now, ttlSeconds: m.ttlSeconds, grantId };
  const minted: AuditEventInput = {
    actor: `workload:${principal.workload.id}`,
    action: 'grant.minted',
    outcome: 'success',
    target_type: 'grant',
    target_id: grantId,
    request_id: m.requestId,
    data: {
      task: task.spec.name,
      params,
      scopes,
      audience: task.spec.audience,
      expires_at: expiresAt.toISOString(),
      decision_id: decision.id,
      ...(m.approvalId && { approval_id: m.approvalId }),
      kid,
      token_sha256: grant.token_sha256,
      identity: grant.identity,
      // What the row fixes at mint, chained by its hash: an edit of the grants row shows in verify and the trail.
      row_sha256: grantDigest(grant),
    },
  };
  // Decision, grant, usage and audit events are written by one statement, all or nothing (one round
  // trip instead of seven); nothing is written if the workload was suspended meanwhile. A hook that
  // must commit with them (an approval's redeem) gets a transaction around both.
  const write = async (db: Database) => {
    const inserted = await insertMint(db, grant, [
      { table: 'decisions', rows: [decisionRow(decision, decisionContext)] },
      { table: 'usage_baseline', rows: usageRows(principal.workload.id, task.spec.name, params, now), ignoreConflicts: true },
      { table: 'audit_pending', rows: pendingAuditRows([decisionAuditEvent(decision, decisionContext), minted], now) },
    ]);
    if (!inserted) throw forbidden('The request was denied.', undefined, `workload ${principal.workload.id} is no longer active`);
  };
  if (m.inTransaction) {
    await deps.db.transaction().execute(async (trx) => {
      await write(trx);
      await m.inTransaction!(trx, grant);
    });
  } else {
    await write(deps.db);
  }
  grantsMinted.inc({ task: task.spec.name });
  return {
    token,
    expiresIn: m.ttlSeconds,
    decision,
    grant: { ...grant, status: 'active', ended_at: null, ended_by: null, end_reason: null, end_decision_id: null, use_count: 0 },
  };
}
