import type { Database } from '../db/database.js';
import type { CompiledTask, RegistrySnapshot } from '../config/registry.js';
import type { Principal } from '../identity/authenticate.js';
import { newId } from '../lib/ids.js';
import { evaluate, evaluateApprover, IDENTITY_CLAIMS, type ApproverAnswer, type BrokerSignals, type PolicyRequest, type PolicyValue } from '../policy/index.js';
import { calendarOpen } from '../signals/calendar.js';
import { gatherSignals, type SignalUse } from './gather-signals.js';
import { readHistory } from './history.js';
import type { RequestCounter } from './request-counter.js';

export type Outcome = 'allow' | 'step_up' | 'deny';

/** What the decision step is asked: who, which task, with what parameters and purpose. */
export interface DecisionInput {
  principal: Principal;
  task: CompiledTask;
  params: Record<string, unknown>;
  purpose: string | null;
  requestId: string;
}

/** The answer and everything behind it, as it will be recorded. */
export interface Decision {
  id: string;
  outcome: Outcome;
  /** Reasons the workload may see. */
  reasons: string[];
  /** Evaluation errors: for the admin, never the workload. */
  errors: string[];
  determining: string[];
  maxTtlSeconds?: number | undefined;
  /** On a step-up: approvals policy asks for (`@approvals`), at least; the task's setting may ask more. */
  requiredApprovals?: number | undefined;
  /** On a step-up: the `@auto_approve` policies' answer, cast as a vote when the approval opens. */
  approver?: ApproverAnswer | undefined;
  policyVersion: string | null;
  configVersion: string | null;
  signals: { used: SignalUse[]; broker: BrokerSignals | null; identity: Record<string, unknown> };
  latencyUs: number;
}

/** Decides one request. The grant service depends on this seam, not on how the decision is made. */
export type Decider = (input: DecisionInput, now: Date) => Promise<Decision>;

/** Identity claims a policy may read, as recorded with the decision (no token, only its hash). */
export function identitySummary(p: Principal): Record<string, unknown> {
  const claims = Object.fromEntries(IDENTITY_CLAIMS.filter((c) => typeof p.claims[c] === 'string').map((c) => [c, p.claims[c]]));
  return { method: p.method, issuer: p.issuer, subject: p.subject, token_age_seconds: p.tokenAgeSeconds, token_sha256: p.tokenSha256, claims };
}

/**
 * The dynamic decision: the task's workload list is the first gate; then, when policies are
 * configured, live signals and the broker's history go through Cedar. With a policy set that no
 * longer compiles, every request is denied (fail closed).
 */
export function policyDecider(db: Database, registry: () => RegistrySnapshot, counter: RequestCounter): Decider {
  return async ({ principal, task, params, purpose }, now) => {
    const started = process.hrtime.bigint();
    const snap = registry();
    const base = {
      id: newId(),
      errors: [] as string[],
      determining: [] as string[],
      policyVersion: snap.policies?.version ?? null,
      configVersion: snap.configVersion,
      signals: { used: [] as SignalUse[], broker: null as BrokerSignals | null, identity: identitySummary(principal) },
    };
    const done = (d: Partial<Decision> & Pick<Decision, 'outcome' | 'reasons'>): Decision => ({
      ...base,
      ...d,
      latencyUs: Number((process.hrtime.bigint() - started) / 1000n),
    });

    if (!task.allows(principal.workload.id)) {
      return done({ outcome: 'deny', reasons: [`workload ${principal.workload.id} may not request task ${task.spec.name}`] });
    }
    if (snap.policyError) return done({ outcome: 'deny', reasons: ['the policy set is invalid'], errors: [snap.policyError] });
    if (!snap.policies) return done({ outcome: 'allow', reasons: [] });

    const [signals, history] = await Promise.all([
      gatherSignals(db, snap, principal, now),
      readHistory(db, { workloadId: principal.workload.id, task: task.spec.name, params, now, baselineDays: snap.settings.novelty_baseline_days, counter }),
    ]);
    const broker: BrokerSignals = {
      requests_last_minute: history.requestsLastMinute,
      requests_last_hour: history.requestsLastHour,
      active_grants: history.activeGrants,
      task_is_new: history.taskIsNew,
      target_is_new: history.targetIsNew,
      new_params: history.newParams,
      calendars: Object.fromEntries(snap.calendars.map((c) => [c.name, calendarOpen(c, now)])),
    };
    const request: PolicyRequest = {
      workload: { id: principal.workload.id, kind: principal.workload.spec.kind, owner: principal.workload.spec.owner },
      task: { name: task.spec.name, risk: task.spec.risk },
      params: params as Record<string, PolicyValue>,
      purpose: purpose ?? '',
      identity: { issuer: principal.issuer, subject: principal.subject, token_age_seconds: principal.tokenAgeSeconds, claims: principal.claims },
      signals: signals.values,
      broker,
    };
    const result = evaluate(snap.policies, request);
    return done({
      outcome: result.outcome,
      reasons: result.reasons,
      errors: result.errors,
      determining: result.determining,
      maxTtlSeconds: result.maxTtlSeconds,
      requiredApprovals: result.requiredApprovals,
      // A delegated approver policy answers in the context the step-up was decided in.
      approver: result.outcome === 'step_up' ? evaluateApprover(snap.policies, request) : undefined,
      signals: { used: signals.uses, broker, identity: base.signals.identity },
    });
  };
}
