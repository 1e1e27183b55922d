import type { Database } from '../db/database.js';
import type { CompiledTask, RegistrySnapshot } from '../config/registry.js';
import type { Principal } from '../identity/authenticate.js';
import { timeOrderedId } from '../lib/ids.js';
import { IDENTITY_CLAIMS, taskReadsContext, type BrokerSignals, type PolicyValue } from '../policy/index.js';
import { calendarOpen, type CalendarSpec } from '../signals/calendar.js';
import { decide, type Verdict } from './decide.js';
import { gatherSignals, wantedSignals, type SignalUse } from './gather-signals.js';
import { FactsReader, type WorkloadHistory } from './history.js';
import type { RequestCounter } from './request-counter.js';

export type Outcome = Verdict['outcome'];

/** What the decision step is asked: who, which task, with what parameters and purpose. */
export interface DecisionInput {
  principal: Principal;
  task: CompiledTask;
  params: Record<string, unknown>;
  purpose: string | null;
  requestId: string;
  /** A grant re-decided by the broker (re-evaluation), not a request of its workload: it is not counted. */
  reevaluation?: boolean;
}

/**
 * The answer and everything behind it, as it will be recorded. `reasons` the workload may see;
 * `errors` (evaluation errors) are for the admin, never the workload.
 */
export interface Decision extends Verdict {
  id: string;
  policyVersion: string | null;
  configVersion: string | null;
  signals: { used: SignalUse[]; broker: BrokerSignals | null; identity: Record<string, unknown> };
  latencyUs: number;
}

/**
 * Decides one request of a workload and counts it for the request-rate signals (a re-evaluation is
 * decided the same way, and not counted). The grant service
 * depends on this seam, not on how the decision is made.
 */
export type Decider = (input: DecisionInput, now: Date) => Promise<Decision>;

/** Identity claims a policy may read, as recorded with the decision (no token, only its hash). */
export function identitySummary(p: Principal, readable: readonly string[] = IDENTITY_CLAIMS): Record<string, unknown> {
  const claims = Object.fromEntries(readable.filter((c) => typeof p.claims[c] === 'string').map((c) => [c, p.claims[c]]));
  return { method: p.method, issuer: p.issuer, subject: p.subject, token_age_seconds: p.tokenAgeSeconds, token_sha256: p.tokenSha256, claims };
}

/**
 * The dynamic decision of a request: decide() over live signals and the broker's history, timed and
 * ready to record. The workload's own identity proof supplies the identity facts. The request counts
 * as its facts are asked (see FactsQuery.count), or once decided when none are (a gate denied it, or no
 * policy is configured): every request counts once, denied ones too.
 */
export function policyDecider(db: Database, registry: () => RegistrySnapshot, counter: RequestCounter): Decider {
  const reader = new FactsReader(db, counter);
  return async ({ principal, task, params, purpose, reevaluation }, now) => {
    const started = process.hrtime.bigint();
    const snap = registry();
    const identity = identitySummary(principal, snap.policies?.identityClaims);
    let counted = reevaluation === true;
    const { verdict, facts } = await decide(snap, principal.workload, task, async () => {
      const wanted = wantedSignals(snap, principal);
      counted = true;
      const { history, signals: found } = await reader.read({
        workloadId: principal.workload.id,
        task: task.spec.name,
        params,
        target: task.spec.target,
        now,
        baselineDays: snap.settings.novelty_baseline_days,
        // decide() gathers facts only when policies are configured.
        countActiveGrants: snap.policies !== undefined && taskReadsContext(snap.policies, task.spec.name, ['broker', 'active_grants']),
        signals: wanted.keys,
        count: !reevaluation,
      });
      const signals = gatherSignals(wanted, found, now);
      return {
        params: params as Record<string, PolicyValue>,
        purpose: purpose ?? '',
        identity: { issuer: principal.issuer, subject: principal.subject, token_age_seconds: principal.tokenAgeSeconds, claims: principal.claims },
        signals: signals.values,
        uses: signals.uses,
        broker: brokerSignals(history, snap.calendars, now),
      };
    });
    if (!counted) counter.increment(principal.workload.id, now);
    return {
      id: timeOrderedId(),
      ...verdict,
      policyVersion: snap.policies?.version ?? null,
      configVersion: snap.configVersion,
      signals: { used: facts?.uses ?? [], broker: facts?.broker ?? null, identity },
      latencyUs: Number((process.hrtime.bigint() - started) / 1000n),
    };
  };
}

/** The broker-derived facts of a request: its history and which calendars are open now. */
export function brokerSignals(history: WorkloadHistory, calendars: CalendarSpec[], now: Date): BrokerSignals {
  return {
    requests_last_minute: history.requestsLastMinute,
    requests_last_hour: history.requestsLastHour,
    active_grants: history.activeGrants,
    task_is_new: history.taskIsNew,
    target_is_new: history.targetIsNew,
    new_params: history.newParams,
    calendars: Object.fromEntries(calendars.map((c) => [c.name, calendarOpen(c, now)])),
  };
}
