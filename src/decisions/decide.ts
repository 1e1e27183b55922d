import type { CompiledTask } from '../config/registry.js';
import type { WorkloadRow } from '../config/registry.repository.js';
import { evaluate, evaluateApprover, type ApproverAnswer, type BrokerSignals, type CompiledPolicySet, type IdentityContext, type PolicyRequest, type PolicyValue } from '../policy/index.js';
import { policyEvaluation } from './decision.metrics.js';

/** The policy set a decision runs under, as a registry snapshot holds it (see RegistrySnapshot). */
export interface PolicyState {
  policies: CompiledPolicySet | undefined;
  policyError: string | undefined;
}

/** Everything policy reads about one request, once the gates let it through. */
export interface DecisionFacts {
  params: Record<string, PolicyValue>;
  purpose: string;
  identity: IdentityContext;
  signals: Record<string, PolicyValue>;
  broker: BrokerSignals;
}

/** What deciding answers, before it is recorded. */
export interface Verdict {
  outcome: 'allow' | 'step_up' | 'deny';
  reasons: string[];
  errors: string[];
  determining: string[];
  maxTtlSeconds?: number | undefined;
  /** On a step-up: approvals policy asks for (`@approvals`), at least; the task's setting may ask more. */
  requiredApprovals?: number | undefined;
  /** On a step-up: the `@auto_approve` policies' answer, cast as a vote when the approval opens. */
  approver?: ApproverAnswer | undefined;
}

/**
 * The one decision function, for requests, re-evaluations and what-if alike: the workload must be
 * active and on the task's list; then, when policies are configured, Cedar decides over the facts.
 * A policy set that no longer compiles denies everything (fail closed). `facts` is only gathered
 * once the gates pass, since gathering reads Postgres.
 */
export async function decide<F extends DecisionFacts>(
  state: PolicyState,
  workload: WorkloadRow,
  task: CompiledTask,
  facts: () => Promise<F>,
): Promise<{ verdict: Verdict; facts?: F }> {
  const deny = (reasons: string[], errors: string[] = []) => ({ verdict: { outcome: 'deny' as const, reasons, errors, determining: [] } });
  if (workload.status !== 'active') return deny([`workload ${workload.id} is ${workload.status}`]);
  if (!task.allows(workload.id)) return deny([`workload ${workload.id} may not request task ${task.spec.name}`]);
  if (state.policyError) return deny(['the policy set is invalid'], [state.policyError]);
  if (!state.policies) return { verdict: { outcome: 'allow', reasons: [], errors: [], determining: [] } };
  const f = await facts();
  const request: PolicyRequest = {
    workload: { id: workload.id, kind: workload.spec.kind, owner: workload.spec.owner },
    task: { name: task.spec.name, risk: task.spec.risk },
    params: f.params,
    purpose: f.purpose,
    identity: f.identity,
    signals: f.signals,
    broker: f.broker,
  };
  const started = performance.now();
  const r = evaluate(state.policies, request);
  const verdict: Verdict = { outcome: r.outcome, reasons: r.reasons, errors: r.errors, determining: r.determining, maxTtlSeconds: r.maxTtlSeconds };
  if (r.outcome === 'step_up') {
    verdict.requiredApprovals = r.requiredApprovals;
    // A delegated approver policy answers in the context the step-up was decided in.
    verdict.approver = evaluateApprover(state.policies, request);
  }
  policyEvaluation.observe((performance.now() - started) / 1000);
  return { verdict, facts: f };
}
