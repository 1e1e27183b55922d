import { z } from 'zod';
import type { RegistrySnapshot } from '../config/registry.js';
import { policyFile } from '../config/spec.js';
import { invalidRequest } from '../lib/errors.js';
import { fieldIssues } from '../lib/validation.js';
import { compilePolicySet, evaluate, neutralBroker, type PolicyDecision, type PolicyValue } from '../policy/index.js';

const value = z.union([z.string(), z.number(), z.boolean()]);

/** A hypothetical request: unstated broker facts are neutral, as in policy tests. */
export const whatIfRequest = z.strictObject({
  workload: z.string().min(1),
  task: z.string().min(1),
  params: z.record(z.string(), value).default({}),
  purpose: z.string().default(''),
  identity: z
    .strictObject({
      issuer: z.string().default('what-if'),
      subject: z.string().optional(),
      token_age_seconds: z.number().int().min(0).default(0),
      claims: z.record(z.string(), z.string()).default({}),
    })
    .default({ issuer: 'what-if', token_age_seconds: 0, claims: {} }),
  signals: z.record(z.string(), value).default({}),
  broker: z
    .strictObject({
      requests_last_minute: z.number().int().min(0).optional(),
      requests_last_hour: z.number().int().min(0).optional(),
      active_grants: z.number().int().min(0).optional(),
      task_is_new: z.boolean().optional(),
      target_is_new: z.boolean().optional(),
      new_params: z.array(z.string()).optional(),
      calendars: z.record(z.string(), z.boolean()).optional(),
    })
    .default({}),
  /** A candidate policy set to evaluate instead of the current one. */
  policies: z.array(policyFile).optional(),
});

/**
 * Evaluates a hypothetical request against the current policy version or a candidate one, and
 * records nothing: how a security engineer asks "what would happen if…".
 */
export function evaluateWhatIf(snap: RegistrySnapshot, input: unknown): PolicyDecision & { candidate: boolean } {
  const parsed = whatIfRequest.safeParse(input);
  if (!parsed.success) throw invalidRequest('The what-if request is invalid.', fieldIssues(parsed.error));
  const q = parsed.data;
  const workload = snap.workloads.get(q.workload);
  if (!workload) throw invalidRequest('Unknown workload.', [{ field: 'workload', reason: `no workload "${q.workload}"` }]);
  const task = snap.tasks.get(q.task);
  if (!task) throw invalidRequest('Unknown task.', [{ field: 'task', reason: `no task "${q.task}"` }]);
  const calendars = snap.calendars.map((c) => c.name);
  const policies = q.policies
    ? compilePolicySet({ tasks: [...snap.tasks.values()].map((t) => t.spec), signalTypes: [...snap.signalTypes.values()], calendars, policies: q.policies })
    : snap.policies;
  if (!policies) throw invalidRequest('No policy set to evaluate.', [{ field: 'policies', reason: 'none is applied; give a candidate' }]);
  const neutral = neutralBroker(calendars);
  const decision = evaluate(policies, {
    workload: { id: workload.id, kind: workload.spec.kind, owner: workload.spec.owner },
    task: { name: task.spec.name, risk: task.spec.risk },
    params: q.params as Record<string, PolicyValue>,
    purpose: q.purpose,
    identity: { issuer: q.identity.issuer, subject: q.identity.subject ?? workload.id, token_age_seconds: q.identity.token_age_seconds, claims: q.identity.claims },
    signals: q.signals,
    broker: { ...neutral, ...q.broker, calendars: { ...neutral.calendars, ...q.broker.calendars } },
  });
  return { ...decision, candidate: Boolean(q.policies) };
}
