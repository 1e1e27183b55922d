import { sql } from 'kysely';
import type { Deps } from '../deps.js';
import type { Principal } from '../identity/authenticate.js';
import type { GrantRow } from '../grants/grant.repository.js';
import { reevaluateActiveGrants, type GrantDecide, type ReevaluationResult } from '../grants/reevaluate.js';
import type { NewSignal } from '../signals/signal.repository.js';
import { findDecision, recordDecision } from './decision.repository.js';

/**
 * Re-decides one active grant under the current policy, registry and signals, as if its workload asked
 * again now with the identity it proved then. A workload no longer active or a task removed is not
 * allowed. A decision that no longer allows is recorded (kind `reevaluation`, linked to the grant).
 */
export function grantReevaluator(deps: Deps): GrantDecide {
  return async (grant: GrantRow) => {
    const now = deps.clock.now();
    const snap = deps.registry.snapshot;
    const workload = snap.workloads.get(grant.workload_id);
    if (!workload || workload.status !== 'active') return { allowed: false, reason: `workload is ${workload?.status ?? 'gone'}`, decisionId: null };
    const task = snap.tasks.get(grant.task);
    if (!task) return { allowed: false, reason: 'the task no longer exists', decisionId: null };
    const original = grant.decision_id ? await findDecision(deps.db, grant.decision_id) : undefined;
    const identity = ((original?.signals as { identity?: Record<string, unknown> } | undefined)?.identity ?? {}) as Record<string, unknown>;
    const proven = grant.identity as { method?: Principal['method']; issuer?: string; subject?: string; token_sha256?: string };
    const principal: Principal = {
      workload,
      method: proven.method ?? 'oidc',
      issuer: proven.issuer ?? '',
      subject: proven.subject ?? '',
      claims: { ...(identity.claims as Record<string, unknown> | undefined), sub: proven.subject },
      tokenAgeSeconds: Number(identity.token_age_seconds ?? 0) + Math.floor((now.getTime() - grant.issued_at.getTime()) / 1000),
      tokenSha256: proven.token_sha256 ?? '',
    };
    const decision = await deps.decide({ principal, task, params: grant.params, purpose: grant.purpose, requestId: `reevaluate:${grant.id}` }, now);
    // A grant redeemed from an approval already had its step-up: only a denial ends it now.
    if (decision.outcome === 'allow' || (decision.outcome === 'step_up' && grant.approval_id)) return { allowed: true, reason: '', decisionId: decision.id };
    await deps.db.transaction().execute((trx) =>
      recordDecision(trx, decision, {
        workloadId: grant.workload_id,
        task: grant.task,
        requestId: null,
        request: { task: grant.task, params: grant.params, reevaluation_of: grant.id },
        ttlSeconds: null,
        grantId: grant.id,
        now,
        kind: 'reevaluation',
      }),
    );
    const reason = decision.outcome === 'step_up' ? 'now needs step-up approval' : decision.reasons.join('; ') || 'no longer allowed';
    return { allowed: false, reason: `re-evaluation: ${reason}`, decisionId: decision.id };
  };
}

/**
 * Continuous authorization on signal arrival: every active grant whose decision read a signal about
 * one of the subjects just reported is re-decided, and revoked if no longer allowed.
 */
export async function reevaluateForSignals(deps: Deps, signals: NewSignal[]): Promise<ReevaluationResult[]> {
  const subjects = [...new Set(signals.map((s) => s.subject))];
  const results: ReevaluationResult[] = [];
  for (const subject of subjects) {
    results.push(await reevaluateActiveGrants(deps, { signalSubject: subject }, grantReevaluator(deps), deps.clock.now()));
  }
  return results;
}

/**
 * The scheduled half: active grants whose decision used a signal that has since passed its maximum
 * age (nothing fresher arrived) are re-decided; a stale signal is absent, and policy may now refuse.
 */
export async function reevaluateStaleGrants(deps: Deps, now: Date): Promise<{ processed: number; detail: Record<string, number> }> {
  let evaluated = 0;
  let revoked = 0;
  for (const type of deps.registry.snapshot.signalTypes.values()) {
    const staleBefore = new Date(now.getTime() - type.max_age_seconds * 1000).toISOString();
    const { rows } = await sql<{ subject: string }>`
      select distinct u->>'subject' as subject
      from grants g join decisions d on d.id = g.decision_id, jsonb_array_elements(d.signals->'used') u
      where g.status = 'active' and g.expires_at > ${now}
        and u->>'type' = ${type.name} and u->>'status' = 'fresh' and u->>'observed_at' < ${staleBefore}`.execute(deps.db);
    for (const { subject } of rows) {
      const r = await reevaluateActiveGrants(deps, { signalSubject: subject }, grantReevaluator(deps), now);
      evaluated += r.evaluated;
      revoked += r.revoked.length;
    }
  }
  return { processed: revoked, detail: { evaluated, revoked } };
}
