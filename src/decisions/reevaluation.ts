import type { Deps } from '../deps.js';
import type { GrantRow } from '../grants/grant.repository.js';
import { grantPrincipal } from '../grants/grant-principal.js';
import { reevaluateActiveGrants, type GrantDecide, type ReevaluationResult, type Verdict } from '../grants/reevaluate.js';
import { watchesSignals, type DueSignals } from '../grants/reevaluation-due.js';
import type { NewSignal } from '../signals/signal.repository.js';
import { recordDecision } from './decision.repository.js';

/**
 * Re-decides one active grant under the current policy, registry and signals, as if its workload asked
 * again now with the identity it proved then (see grantPrincipal). A workload no longer active or a
 * task removed is not allowed. The decision, whatever its outcome, is returned to be recorded (kind
 * `reevaluation`, linked to the grant): what it read is what the grant is judged on until the next
 * signal change.
 */
export function grantReevaluator(deps: Deps): GrantDecide {
  return async (grant: GrantRow, now: Date): Promise<Verdict> => {
    const rebuilt = await grantPrincipal(deps, grant, now);
    if ('refused' in rebuilt) return { allowed: false, reason: rebuilt.refused, decisionId: null };
    const task = deps.registry.snapshot.tasks.get(grant.task);
    if (!task) return { allowed: false, reason: 'the task no longer exists', decisionId: null };
    const decision = await deps.decide({ principal: rebuilt.principal, task, params: grant.params, purpose: grant.purpose, requestId: `reevaluate:${grant.id}` }, now);
    // A grant redeemed from an approval (or delegated under one) already had its step-up: only a denial ends it now.
    const allowed = decision.outcome === 'allow' || (decision.outcome === 'step_up' && grant.approval_id !== null);
    const why = decision.outcome === 'step_up' ? 'now needs step-up approval' : decision.reasons.join('; ') || 'no longer allowed';
    return {
      allowed,
      reason: allowed ? '' : `re-evaluation: ${why}`,
      decisionId: decision.id,
      watchesSignals: watchesSignals(decision.signals.used),
      record: (trx) =>
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
    };
  };
}

/** What makes a grant due, from the registry as it is now. */
function dueSignals(deps: Deps, subjects?: string[]): DueSignals {
  const maxAges = Object.fromEntries([...deps.registry.snapshot.signalTypes.values()].map((t) => [t.name, t.max_age_seconds]));
  return subjects ? { maxAges, subjects } : { maxAges };
}

/**
 * Continuous authorization on signal arrival, at once: the grants whose latest decision read an older
 * observation about one of the subjects just reported are re-decided. Only an accelerator: if this
 * process dies first, the scheduled sweep finds the same grants due.
 */
export async function reevaluateForSignals(deps: Deps, signals: NewSignal[]): Promise<ReevaluationResult> {
  const subjects = [...new Set(signals.map((s) => s.subject))];
  return reevaluateActiveGrants(deps, { due: dueSignals(deps, subjects) }, grantReevaluator(deps), deps.clock.now());
}

/**
 * The scheduled, durable half: every active grant whose latest decision is out of date with the
 * signals (a newer observation arrived, or one it relied on went stale or expired) is re-decided.
 * Works from what is committed, so nothing a crash or a race lost in the signal hook stays missed.
 */
export async function reevaluateDueGrants(deps: Deps, now: Date): Promise<{ processed: number; detail: Record<string, number> }> {
  const r = await reevaluateActiveGrants(deps, { due: dueSignals(deps) }, grantReevaluator(deps), now);
  return { processed: r.revoked.length, detail: { evaluated: r.evaluated, revoked: r.revoked.length, failed: r.failed.length } };
}
