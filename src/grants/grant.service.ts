import type { Database } from '../db/database.js';
import type { Registry } from '../config/registry.js';
import type { KeyStore } from '../keys/keystore.js';
import type { Principal } from '../identity/authenticate.js';
import type { Decider, Decision } from '../decisions/decider.js';
import type { Clock } from '../lib/clock.js';
import type { Kek } from '../keys/kek.js';
import type { Logger } from 'pino';
import type { CompiledTask } from '../config/registry.js';
import { conflict, forbidden, invalidRequest, notFound, TesseraError } from '../lib/errors.js';
import { fieldIssues } from '../lib/validation.js';
import { recordDecision, type DecisionContext } from '../decisions/decision.repository.js';
import { findGrant, type GrantRow } from './grant.repository.js';
import { endGrants } from './end-grants.js';
import { mintGrant } from './mint-grant.js';
import type { StatusIndexAllocator } from './status-index.js';
import type { MintWriter } from './mint.repository.js';
import { requestApproval, type PendingApproval } from '../approvals/approval.service.js';

export interface GrantDeps {
  db: Database;
  clock: Clock;
  registry: Registry;
  keys: KeyStore;
  decide: Decider;
  /** Token Status List indexes, allocated in blocks. */
  statusIndexes: StatusIndexAllocator;
  /** Writes mints, several per statement when they commit together. */
  mints: MintWriter;
  /** The broker's issuer URL (`iss` of its tokens). */
  issuer: string;
  /** Opens approval webhook secrets (step-up notifications and delegated approvers). */
  kek: Kek;
  log: Logger;
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

/** A step-up: the request waits for approval; the workload polls and later redeems it. */
export interface PendingGrant {
  kind: 'pending';
  approval: PendingApproval;
  decision: Decision;
}

/** What asking for a grant gives: a token now, or an approval request to wait for. */
export type GrantOutcome = ({ kind: 'issued' } & IssuedGrant) | PendingGrant;

/** The task's parameters, validated and normalised by its schema (a 400 naming each bad field otherwise). */
export function parseTaskParams(task: CompiledTask, params: Record<string, unknown>): Record<string, unknown> {
  const parsed = task.params.safeParse(params);
  if (!parsed.success) throw invalidRequest(`Parameters do not fit task ${task.spec.name}.`, fieldIssues(parsed.error, 'params'));
  return parsed.data;
}

/** The task a request names, or a 400. */
export function taskNamed(deps: Pick<GrantDeps, 'registry'>, name: string): CompiledTask {
  const task = deps.registry.snapshot.tasks.get(name);
  if (!task) throw invalidRequest('The request names no known task.', [{ field: 'task', reason: `unknown task "${name}"` }]);
  return task;
}

/** The requested scopes (all of `allowed` when none are named), or a 400 naming those outside `allowed`. */
export function scopesWithin(allowed: string[], requested: string[] | undefined, what: string): string[] {
  const scopes = requested?.length ? requested : allowed;
  const extra = scopes.filter((s) => !allowed.includes(s));
  if (extra.length) {
    throw new TesseraError(400, 'invalid_scope', `Scopes outside ${what}: ${extra.join(' ')}.`, {
      issues: [{ field: 'scope', reason: `not granted by ${what}: ${extra.join(' ')}` }],
    });
  }
  return scopes;
}

/** A 400 unless the requested audience (if any) and TTL (if any) fit the task. */
export function checkAudienceAndTtl(task: CompiledTask, audience: string | undefined, ttlSeconds: number | undefined): void {
  if (audience !== undefined && audience !== task.spec.audience) {
    throw new TesseraError(400, 'invalid_target', `Task ${task.spec.name} is for audience ${task.spec.audience}.`, {
      issues: [{ field: 'audience', reason: `must be ${task.spec.audience}` }],
    });
  }
  if (ttlSeconds !== undefined && ttlSeconds > task.spec.max_ttl_seconds) {
    throw invalidRequest('Requested TTL is too long.', [{ field: 'ttl_seconds', reason: `at most ${task.spec.max_ttl_seconds} for task ${task.spec.name}` }]);
  }
}

/** Records a refused decision, then throws the 403 that carries its id and the reasons the caller may see. */
export async function refuse(deps: Pick<GrantDeps, 'db'>, decision: Decision, record: DecisionContext): Promise<never> {
  await deps.db.transaction().execute((trx) => recordDecision(trx, decision, record));
  throw forbidden('The request was denied.', { decision_id: decision.id, reasons: decision.reasons });
}

/**
 * The grant use case: validate the request against its task, decide, and mint. The token leaves only
 * after its grant row is committed; a step-up opens an approval request bound to this one action; a
 * denial raises a TesseraError carrying the decision id.
 */
export async function requestGrant(deps: GrantDeps, principal: Principal, req: GrantRequest): Promise<GrantOutcome> {
  const task = taskNamed(deps, req.task);
  const params = parseTaskParams(task, req.params);
  const scopes = scopesWithin(task.spec.scopes, req.scopes, `task ${task.spec.name}`);
  checkAudienceAndTtl(task, req.audience, req.ttlSeconds);

  const now = deps.clock.now();
  const purpose = req.purpose ?? null;
  const decision = await deps.decide({ principal, task, params, purpose, requestId: req.requestId }, now);
  const ttl = Math.min(req.ttlSeconds ?? task.spec.default_ttl_seconds, task.spec.max_ttl_seconds, decision.maxTtlSeconds ?? Infinity);
  const request = { task: task.spec.name, params, purpose, ttl_seconds: req.ttlSeconds ?? null, scopes, audience: req.audience ?? null };
  const record = { workloadId: principal.workload.id, task: task.spec.name, requestId: req.requestId, request, now, ttlSeconds: null, grantId: null };
  if (decision.outcome === 'deny') return refuse(deps, decision, record);
  if (decision.outcome === 'step_up') {
    const approval = await requestApproval(deps, { principal, task, params, purpose, decision, record });
    return { kind: 'pending', approval, decision };
  }
  const issued = await mintGrant(deps, principal, { task, params, scopes, purpose, ttlSeconds: ttl, decision, request, requestId: req.requestId });
  return { kind: 'issued', ...issued };
}

/**
 * The holder ends its own grant because its task is done. Its delegated children complete with it: they
 * were narrower slices of the same task, and a tool must not keep acting for a task that is over.
 * Idempotent for a grant already completed.
 */
export async function completeGrant(deps: Pick<GrantDeps, 'db' | 'clock'>, grantId: string, workloadId: string, requestId: string | null = null): Promise<GrantRow> {
  const existing = await findGrant(deps.db, grantId);
  if (!existing || existing.workload_id !== workloadId) throw notFound('Grant');
  const end = { status: 'completed' as const, by: `workload:${workloadId}`, reason: 'task completed', at: deps.clock.now(), requestId };
  const ended = (await endGrants(deps.db, { grantIds: [grantId] }, end, { cascade: true })).find((g) => g.id === grantId);
  if (ended) return ended;
  const current = await findGrant(deps.db, grantId);
  if (current?.status === 'completed') return current;
  throw conflict(`Grant is already ${current?.status}.`, { status: current?.status });
}
