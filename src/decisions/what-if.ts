import { z } from 'zod';
import type { CompiledTask, RegistrySnapshot } from '../config/registry.js';
import { policyFile } from '../config/spec.js';
import { documentPolicyInput } from '../config/load-folder.js';
import { parseTaskParams } from '../grants/grant.service.js';
import { invalidRequest, type FieldIssue } from '../lib/errors.js';
import { fieldIssues } from '../lib/validation.js';
import {
  compilePolicySet,
  neutralBroker,
  PolicyValidationError,
  signalValueProblem,
  type BrokerSignals,
  type PolicyValue,
} from '../policy/index.js';
import { decide, type PolicyState, type Verdict } from './decide.js';

const value = z.union([z.string(), z.number(), z.boolean()]);
const count = z.number().int().min(0);

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
      token_age_seconds: count.default(0),
      claims: z.record(z.string(), z.string()).default({}),
    })
    .default({ issuer: 'what-if', token_age_seconds: 0, claims: {} }),
  signals: z.record(z.string(), value).default({}),
  broker: z
    .strictObject({
      requests_last_minute: count.optional(),
      requests_last_hour: count.optional(),
      active_grants: count.optional(),
      task_is_new: z.boolean().optional(),
      target_is_new: z.boolean().optional(),
      new_params: z.array(z.string()).optional(),
      calendars: z.record(z.string(), z.boolean()).optional(),
    })
    .default({}),
  /** A candidate policy set to evaluate instead of the current one. */
  policies: z.array(policyFile).optional(),
});
type WhatIfRequest = z.infer<typeof whatIfRequest>;

/** The answer to a what-if: a decision as the broker would make it, never recorded. */
export type WhatIfAnswer = Verdict & { policyVersion: string | null; candidate: boolean };

/** Each given signal must be a registered type and carry a value of that type, as ingestion demands. */
function signalIssues(snap: RegistrySnapshot, signals: Record<string, PolicyValue>): FieldIssue[] {
  return Object.entries(signals).flatMap(([name, v]) => {
    const type = snap.signalTypes.get(name);
    const reason = type ? signalValueProblem(type, v) : `signal type "${name}" is not registered`;
    return reason ? [{ field: `signals.${name}`, reason }] : [];
  });
}

/** Calendars must be registered ones; new_params must name the task's params. */
function brokerIssues(snap: RegistrySnapshot, task: CompiledTask, broker: WhatIfRequest['broker']): FieldIssue[] {
  const calendars = new Set(snap.calendars.map((c) => c.name));
  return [
    ...Object.keys(broker.calendars ?? {}).flatMap((c) => (calendars.has(c) ? [] : [{ field: `broker.calendars.${c}`, reason: `no calendar "${c}" is registered` }])),
    ...(broker.new_params ?? []).flatMap((p, i) =>
      Object.hasOwn(task.spec.params, p) ? [] : [{ field: `broker.new_params.${i}`, reason: `task ${task.spec.name} has no param "${p}"` }],
    ),
  ];
}

/** The current policy set, or a candidate compiled against the current registry (never preparsed: any viewer may send one). */
function policyState(snap: RegistrySnapshot, candidate: WhatIfRequest['policies']): PolicyState {
  if (!candidate) return snap;
  try {
    const policies = compilePolicySet(
      documentPolicyInput({
        tasks: [...snap.tasks.values()].map((t) => t.spec),
        signal_types: [...snap.signalTypes.values()],
        calendars: snap.calendars,
        settings: snap.settings,
        policies: candidate,
      }),
    );
    return { policies, policyError: undefined };
  } catch (err) {
    if (!(err instanceof PolicyValidationError)) throw err;
    throw invalidRequest('The candidate policies are invalid.', err.problems.map((reason) => ({ field: 'policies', reason })));
  }
}

/**
 * Evaluates a hypothetical request with decide(), the function the broker decides real requests
 * with (so the workload's status and the task's workload list count), against the current policy
 * version or a candidate one, and records nothing: how a security engineer asks "what would happen if…".
 */
export async function evaluateWhatIf(snap: RegistrySnapshot, input: unknown): Promise<WhatIfAnswer> {
  const parsed = whatIfRequest.safeParse(input);
  if (!parsed.success) throw invalidRequest('The what-if request is invalid.', fieldIssues(parsed.error));
  const q = parsed.data;
  const workload = snap.workloads.get(q.workload);
  if (!workload) throw invalidRequest('Unknown workload.', [{ field: 'workload', reason: `no workload "${q.workload}"` }]);
  const task = snap.tasks.get(q.task);
  if (!task) throw invalidRequest('Unknown task.', [{ field: 'task', reason: `no task "${q.task}"` }]);
  const params = parseTaskParams(task, q.params) as Record<string, PolicyValue>;
  const issues = [...signalIssues(snap, q.signals), ...brokerIssues(snap, task, q.broker)];
  if (issues.length) throw invalidRequest('The what-if request is invalid.', issues);
  const state = policyState(snap, q.policies);
  const neutral = neutralBroker(snap.calendars.map((c) => c.name));
  const broker: BrokerSignals = { ...neutral, ...q.broker, calendars: { ...neutral.calendars, ...q.broker.calendars } };
  const { verdict } = await decide(state, workload, task, async () => ({
    params,
    purpose: q.purpose,
    identity: { issuer: q.identity.issuer, subject: q.identity.subject ?? workload.id, token_age_seconds: q.identity.token_age_seconds, claims: q.identity.claims },
    signals: q.signals,
    broker,
  }));
  return { ...verdict, policyVersion: state.policies?.version ?? null, candidate: Boolean(q.policies) };
}
