import type { JWTPayload } from 'jose';
import type { Principal } from '../identity/authenticate.js';
import { forbidden, invalidRequest, TesseraError, type FieldIssue } from '../lib/errors.js';
import type { CompiledTask } from '../config/registry.js';
import { delegationDepth, type GrantRow } from './grant.repository.js';
import { checkAudienceAndTtl, parseTaskParams, refuse, scopesWithin, type GrantDeps, type IssuedGrant } from './grant.service.js';
import { grantPrincipal } from './grant-principal.js';
import { liveGrantOf, verifyOwnAccessToken } from './own-token.js';
import { mintGrant } from './mint-grant.js';

/** What a holder asks when it delegates (RFC 8693 token exchange with an access token as subject). */
export interface DelegationRequest {
  /** The parent grant's access token (`subject_token`): possession is the authentication. */
  subjectToken: string;
  /** The grant the caller names (the JSON route's path); must be the token's own. */
  grantId?: string | undefined;
  /** Who will act with the child (`actor_token`, authenticated like any workload), if named. */
  actor?: Principal | undefined;
  /** Must be the parent's task when given. */
  task?: string | undefined;
  params?: Record<string, unknown> | undefined;
  scopes?: string[] | undefined;
  audience?: string | undefined;
  ttlSeconds?: number | undefined;
  purpose?: string | undefined;
  requestId: string;
}

/** The one error for any subject token that is not a live grant of ours: RFC 8693 §2.2.2 says invalid_request. */
const notDelegable = (logDetail: string) => new TesseraError(400, 'invalid_grant', 'The subject token is not an active grant of this broker.', { logDetail });

/**
 * Delegation: a holder exchanges its token for a narrower child: the same task; scopes within the
 * parent's; parameters equal to the parent's or, where the task allows it, lower (see narrowParams);
 * an expiry no later than the parent's; at most the task's `delegation.max_depth` steps from the root.
 * The child is decided by policy like any request, for the parent's workload and proven identity; a
 * step-up is satisfied only by an approval the parent already had. Its token carries a nested RFC 8693
 * `act` claim, and its grant row the parent's id, so revoking or completing the parent ends it.
 */
export async function delegateGrant(deps: GrantDeps, req: DelegationRequest): Promise<IssuedGrant> {
  const now = deps.clock.now();
  const { parent, claims } = await parentOf(deps, req, now);
  const task = deps.registry.snapshot.tasks.get(parent.task);
  if (!task) throw notDelegable(`task ${parent.task} no longer exists`);
  if (req.task !== undefined && req.task !== parent.task) {
    throw invalidRequest('A delegated grant is for its parent\'s task.', [{ field: 'task', reason: `must be ${parent.task}` }]);
  }
  const rule = task.spec.delegation;
  if (!rule.allowed) throw forbidden(`Task ${task.spec.name} may not be delegated.`);
  const depth = (await delegationDepth(deps.db, parent.id)) + 1;
  if (depth > rule.max_depth) throw forbidden(`Task ${task.spec.name} may be delegated at most ${rule.max_depth} step(s) deep.`);
  const scopes = scopesWithin(parent.scopes, req.scopes, 'the parent grant');
  const params = narrowParams(task, parent.params, req.params);
  checkAudienceAndTtl(task, req.audience, req.ttlSeconds);
  const remaining = Math.floor((parent.expires_at.getTime() - now.getTime()) / 1000);
  const ttl = Math.min(req.ttlSeconds ?? task.spec.default_ttl_seconds, task.spec.max_ttl_seconds, remaining);
  if (ttl < 1) throw notDelegable(`grant ${parent.id} expires within a second`);

  const rebuilt = await grantPrincipal(deps, parent, now);
  if ('refused' in rebuilt) throw forbidden('The request was denied.', undefined, rebuilt.refused);
  const { principal } = rebuilt;
  const purpose = req.purpose ?? parent.purpose;
  const decision = await deps.decide({ principal, task, params, purpose, requestId: req.requestId }, now);
  const request = { task: task.spec.name, params, purpose, ttl_seconds: req.ttlSeconds ?? null, scopes, delegated_from: parent.id, actor: req.actor?.workload.id ?? null };
  const record = { workloadId: principal.workload.id, task: task.spec.name, requestId: req.requestId, request, now, ttlSeconds: null, grantId: null };
  if (decision.outcome === 'deny' || (decision.outcome === 'step_up' && !parent.approval_id)) return refuse(deps, decision, record);
  return mintGrant(deps, principal, {
    task,
    params,
    scopes,
    purpose,
    ttlSeconds: Math.min(ttl, decision.maxTtlSeconds ?? Infinity),
    decision,
    request,
    requestId: req.requestId,
    // The approval the chain was granted under stays its justification (and a re-evaluation's).
    approvalId: parent.approval_id ?? undefined,
    delegation: { parentId: parent.id, act: actClaim(parent, claims, req.actor), actor: req.actor ? actorIdentity(req.actor) : null },
  });
}

/** The parent grant behind the subject token, if it is one of ours, exactly that token, and live now. */
async function parentOf(deps: GrantDeps, req: DelegationRequest, now: Date): Promise<{ parent: GrantRow; claims: JWTPayload }> {
  let claims: JWTPayload;
  try {
    claims = await verifyOwnAccessToken(deps, req.subjectToken);
  } catch (err) {
    throw notDelegable((err as TesseraError).logDetail ?? 'subject token does not verify');
  }
  if (req.grantId !== undefined && claims.jti !== req.grantId) throw notDelegable('access token is for another grant');
  const parent = await liveGrantOf(deps, claims, req.subjectToken, now);
  if (!parent) throw notDelegable(`grant ${String(claims.jti)} is not active`);
  return { parent, claims };
}

/**
 * The child's parameters: valid for the task and no wider than the parent's. Each equals the parent's,
 * except the number parameters the task lists in `delegation.narrowable` (limits such as an amount),
 * which may be lower. A child neither adds a parameter its parent lacked nor drops one it had, so an
 * unset parameter can never widen into "any". Without parameters asked, the child has the parent's.
 */
function narrowParams(task: CompiledTask, parent: Record<string, unknown>, requested: Record<string, unknown> | undefined): Record<string, unknown> {
  if (requested === undefined) return parent;
  const params = parseTaskParams(task, requested);
  const narrowable = new Set(task.spec.delegation.narrowable ?? []);
  const issues: FieldIssue[] = [];
  for (const key of new Set([...Object.keys(parent), ...Object.keys(params)])) {
    const [was, is] = [parent[key], params[key]];
    if (was === is) continue;
    if (narrowable.has(key) && typeof was === 'number' && typeof is === 'number' && is <= was) continue;
    const reason = was === undefined ? 'not set on the parent grant' : narrowable.has(key) ? `at most ${String(was)}, the parent grant's` : `must equal the parent grant's (${JSON.stringify(was)})`;
    issues.push({ field: `params.${key}`, reason });
  }
  if (issues.length) throw invalidRequest('A delegated grant cannot be wider than its parent.', issues);
  return params;
}

/**
 * RFC 8693 §4.1 `act`: the actor now (the actor token's workload, or without one the holder that
 * delegated), with the parent token's own `act`, the earlier actors, nested inside.
 */
function actClaim(parent: GrantRow, claims: JWTPayload, actor: Principal | undefined): Record<string, unknown> {
  const earlier = claims.act as Record<string, unknown> | undefined;
  return { sub: actor?.workload.id ?? parent.workload_id, ...(earlier && { act: earlier }) };
}

const actorIdentity = (a: Principal) => ({ workload_id: a.workload.id, method: a.method, issuer: a.issuer, subject: a.subject, token_sha256: a.tokenSha256 });
