import type { Database } from '../db/database.js';
import type { Registry } from '../config/registry.js';
import type { KeyStore } from '../keys/keystore.js';
import type { Principal } from '../identity/authenticate.js';
import type { Decider, Decision } from '../decisions/decider.js';
import type { RequestCounter } from '../decisions/request-counter.js';
import type { Clock } from '../lib/clock.js';
import { conflict, forbidden, invalidRequest, notFound, TesseraError } from '../lib/errors.js';
import { newId } from '../lib/ids.js';
import { sha256Hex } from '../lib/hash.js';
import { fieldIssues } from '../lib/validation.js';
import { accessTokenClaims } from './access-token.js';
import { decisionAuditEvent, decisionRow, recordDecision } from '../decisions/decision.repository.js';
import { usageRows } from '../decisions/history.js';
import { pendingAuditRows } from '../audit/audit-outbox.js';
import type { AuditEventInput } from '../audit/audit-event.js';
import { insertMint } from './mint.repository.js';
import type { StatusIndexAllocator } from './status-index.js';
import { findGrant, type GrantRow } from './grant.repository.js';
import { endGrants } from './end-grants.js';
import { grantsMinted } from './grant.metrics.js';
import { statusListUri } from './status-list.service.js';

export interface GrantDeps {
  db: Database;
  clock: Clock;
  registry: Registry;
  keys: KeyStore;
  decide: Decider;
  /** Counts requests per workload for the request-rate signals. */
  requests: RequestCounter;
  /** Token Status List indexes, allocated in blocks. */
  statusIndexes: StatusIndexAllocator;
  /** The broker's issuer URL (`iss` of its tokens). */
  issuer: string;
}

export interface GrantRequest {
  task: string;
  params: Record<string, unknown>;
  purpose?: string | undefined;
  ttlSeconds?: number | undefined;
  /** Down-scoping: a subset of the task's scopes (RFC 8693 `scope`). */
  scopes?: string[] | undefined;
  /** Must equal the task's audience when given (RFC 8693 `audience`/`resource`). */
  audience?: string | undefined;
  requestId: string;
}

export interface IssuedGrant {
  token: string;
  grant: GrantRow;
  expiresIn: number;
  decision: Decision;
}

/**
 * The grant use case: validate the request against its task, decide, and mint. The token leaves only
 * after its grant row is committed; a denied or step-up decision raises a TesseraError carrying the
 * decision id.
 */
export async function requestGrant(deps: GrantDeps, principal: Principal, req: GrantRequest): Promise<IssuedGrant> {
  const task = deps.registry.snapshot.tasks.get(req.task);
  if (!task) throw invalidRequest('The request names no known task.', [{ field: 'task', reason: `unknown task "${req.task}"` }]);
  const parsed = task.params.safeParse(req.params);
  if (!parsed.success) throw invalidRequest(`Parameters do not fit task ${task.spec.name}.`, fieldIssues(parsed.error, 'params'));
  const params = parsed.data;
  const scopes = req.scopes?.length ? req.scopes : task.spec.scopes;
  const extraScopes = scopes.filter((s) => !task.spec.scopes.includes(s));
  if (extraScopes.length) {
    throw new TesseraError(400, 'invalid_scope', `Scopes outside task ${task.spec.name}: ${extraScopes.join(' ')}.`, {
      issues: [{ field: 'scope', reason: `not granted by the task: ${extraScopes.join(' ')}` }],
    });
  }
  if (req.audience !== undefined && req.audience !== task.spec.audience) {
    throw new TesseraError(400, 'invalid_target', `Task ${task.spec.name} is for audience ${task.spec.audience}.`, {
      issues: [{ field: 'audience', reason: `must be ${task.spec.audience}` }],
    });
  }
  if (req.ttlSeconds !== undefined && req.ttlSeconds > task.spec.max_ttl_seconds) {
    throw invalidRequest('Requested TTL is too long.', [
      { field: 'ttl_seconds', reason: `at most ${task.spec.max_ttl_seconds} for task ${task.spec.name}` },
    ]);
  }

  const now = deps.clock.now();
  const purpose = req.purpose ?? null;
  const decision = await deps.decide({ principal, task, params, purpose, requestId: req.requestId }, now);
  deps.requests.increment(principal.workload.id, now);
  const ttl = Math.min(req.ttlSeconds ?? task.spec.default_ttl_seconds, task.spec.max_ttl_seconds, decision.maxTtlSeconds ?? Infinity);
  const record = {
    workloadId: principal.workload.id,
    task: task.spec.name,
    requestId: req.requestId,
    request: { task: task.spec.name, params, purpose, ttl_seconds: req.ttlSeconds ?? null, scopes, audience: req.audience ?? null },
    now,
  };
  if (decision.outcome !== 'allow') {
    await deps.db.transaction().execute((trx) => recordDecision(trx, decision, { ...record, ttlSeconds: null, grantId: null }));
    if (decision.outcome === 'deny') throw forbidden('The request was denied.', { decision_id: decision.id, reasons: decision.reasons });
    throw new TesseraError(403, 'step_up_required', 'This request needs an approval.', { extra: { decision_id: decision.id, reasons: decision.reasons } });
  }

  const grantId = newId();
  const expiresAt = new Date(now.getTime() + ttl * 1000);
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
  const grant = {
    id: grantId,
    workload_id: principal.workload.id,
    task: task.spec.name,
    params,
    scopes,
    audience: task.spec.audience,
    purpose,
    issued_at: now,
    expires_at: expiresAt,
    decision_id: decision.id,
    approval_id: null,
    parent_id: null,
    max_uses: task.spec.max_uses ?? null,
    cnf_jkt: null,
    kid,
    token_sha256: sha256Hex(token),
    identity: { method: principal.method, issuer: principal.issuer, subject: principal.subject, token_sha256: principal.tokenSha256 },
    status_idx: statusIdx,
  };
  const decisionContext = { ...record, ttlSeconds: ttl, grantId };
  const minted: AuditEventInput = {
    actor: `workload:${principal.workload.id}`,
    action: 'grant.minted',
    outcome: 'success',
    target_type: 'grant',
    target_id: grantId,
    request_id: req.requestId,
    data: {
      task: task.spec.name,
      scopes,
      audience: task.spec.audience,
      expires_at: expiresAt.toISOString(),
      decision_id: decision.id,
      kid,
      token_sha256: grant.token_sha256,
      identity: grant.identity,
    },
  };
  // Decision, grant, usage and audit events are written by one statement, all or nothing; the token
  // is returned only after it commits. Nothing is written if the workload was suspended meanwhile.
  const inserted = await insertMint(deps.db, grant, [
    { table: 'decisions', rows: [decisionRow(decision, decisionContext)] },
    { table: 'usage_baseline', rows: usageRows(principal.workload.id, task.spec.name, params, now), ignoreConflicts: true },
    { table: 'audit_pending', rows: pendingAuditRows([decisionAuditEvent(decision, decisionContext), minted], now) },
  ]);
  if (!inserted) throw forbidden('The request was denied.', undefined, `workload ${principal.workload.id} is no longer active`);
  grantsMinted.inc({ task: task.spec.name });
  return {
    token,
    expiresIn: ttl,
    decision,
    grant: { ...grant, status: 'active', ended_at: null, ended_by: null, end_reason: null, end_decision_id: null, use_count: 0 },
  };
}

/** The holder ends its own grant because its task is done. Idempotent for a grant already completed. */
export async function completeGrant(deps: Pick<GrantDeps, 'db' | 'clock'>, grantId: string, workloadId: string): Promise<GrantRow> {
  const existing = await findGrant(deps.db, grantId);
  if (!existing || existing.workload_id !== workloadId) throw notFound('Grant');
  const end = { status: 'completed' as const, by: `workload:${workloadId}`, reason: 'task completed', at: deps.clock.now() };
  const [ended] = await endGrants(deps.db, { grantIds: [grantId] }, end, { cascade: false });
  if (ended) return ended;
  const current = await findGrant(deps.db, grantId);
  if (current?.status === 'completed') return current;
  throw conflict(`Grant is already ${current?.status}.`, { status: current?.status });
}
