import { isAuthorized, statefulIsAuthorized, type AuthorizationAnswer, type CedarValueJson, type Context, type EntityJson } from '@cedar-policy/cedar-wasm/nodejs';
import { CedarValueError, toCedarRecord, toCedarValue } from './cedar-value.js';
import { pickContext } from './context-reads.js';
import { memoKey } from './answer-memo.js';
import { metrics } from '../lib/metrics.js';
import type { CompiledPolicySet, TaskPlan } from './policy-set.js';
import type { ApproverAnswer, PolicyDecision, PolicyRequest } from './policy-request.js';

/** How the registry policies' Cedar calls were answered: plain counts, read at scrape time (no label lookup per call). */
const answers = { cedar: 0, memo: 0 };
metrics.sampled('tessera_policy_cedar_calls_total', 'Cedar calls made for the registry policies: questions their memo had not seen answered.', 'counter', () => answers.cedar);
metrics.sampled('tessera_policy_memo_answers_total', 'Questions to the registry policies answered from their memo, without calling Cedar (an identical call answered before).', 'counter', () => answers.memo);

/** Shown when Cedar denies by default: no permit applied and no forbid did either. */
export const NO_PERMIT_REASON = 'no policy permits this request';
/** Shown when evaluation failed; the detail is in `errors`, for the admin only. */
export const EVALUATION_FAILED_REASON = 'the request could not be evaluated against policy';

function identityContext(compiled: CompiledPolicySet, identity: PolicyRequest['identity']): Record<string, CedarValueJson> {
  if (typeof identity.issuer !== 'string' || typeof identity.subject !== 'string') throw new CedarValueError('identity: issuer and subject must be strings');
  const claims = Object.fromEntries(
    compiled.identityClaims.flatMap((c) => (typeof identity.claims[c] === 'string' ? [[c, identity.claims[c] as string]] : [])),
  );
  return {
    issuer: identity.issuer,
    subject: identity.subject,
    token_age_seconds: toCedarValue('long', identity.token_age_seconds, 'identity.token_age_seconds'),
    claims,
  };
}

function brokerContext(compiled: CompiledPolicySet, broker: PolicyRequest['broker']): Record<string, CedarValueJson> {
  const long = (k: 'requests_last_minute' | 'requests_last_hour' | 'active_grants') => toCedarValue('long', broker[k], `broker.${k}`);
  const calendars = compiled.calendars.map((c) => [c, toCedarValue('boolean', broker.calendars[c], `broker.calendars.${c}`)] as const);
  return {
    requests_last_minute: long('requests_last_minute'),
    requests_last_hour: long('requests_last_hour'),
    ...(broker.active_grants !== null && { active_grants: long('active_grants') }),
    task_is_new: toCedarValue('boolean', broker.task_is_new, 'broker.task_is_new'),
    target_is_new: toCedarValue('boolean', broker.target_is_new, 'broker.target_is_new'),
    new_params: broker.new_params.map((p, i) => toCedarValue('string', p, `broker.new_params.${i}`)),
    calendars: Object.fromEntries(calendars),
  };
}

/**
 * The Cedar context for a request, every value checked against its kind in the generated schema
 * and encoded; throws CedarValueError on a value that does not fit. This check is what lets
 * evaluation skip Cedar's request validation (see evaluate).
 */
export function buildContext(compiled: CompiledPolicySet, request: PolicyRequest): Context {
  const params = compiled.kinds.params[request.task.name];
  if (!params) throw new CedarValueError(`task "${request.task.name}" is not registered`);
  return {
    params: toCedarRecord(params, request.params, 'params'),
    signals: toCedarRecord(compiled.kinds.signals, request.signals, 'signals'),
    identity: identityContext(compiled, request.identity),
    broker: brokerContext(compiled, request.broker),
    purpose: toCedarValue('string', request.purpose, 'purpose'),
  };
}

/** The principal and resource entities, each only when a policy of the plan reads it. */
function entities(plan: TaskPlan, request: PolicyRequest): EntityJson[] {
  const out: EntityJson[] = [];
  if (plan.reads.principal) out.push({ uid: { type: 'Workload', id: request.workload.id }, attrs: { kind: request.workload.kind, owner: request.workload.owner }, parents: [] });
  if (plan.reads.resource) out.push({ uid: { type: 'Task', id: request.task.name }, attrs: { risk: request.task.risk }, parents: [] });
  return out;
}

/**
 * One Cedar answer: kept from an identical call when the set was preparsed (see AnswerMemo), else
 * from the preparsed cache, else parsing the plan's policies.
 */
function authorize(plan: TaskPlan, request: PolicyRequest, context: Context): AuthorizationAnswer {
  const call = {
    principal: { type: 'Workload', id: request.workload.id },
    action: { type: 'Action', id: request.task.name },
    resource: { type: 'Task', id: request.task.name },
    context: pickContext(context, plan.reads.context),
    entities: entities(plan, request),
  };
  const id = plan.preparsedId;
  if (!id) return isAuthorized({ ...call, policies: { staticPolicies: plan.policies } });
  const ask = () => statefulIsAuthorized({ ...call, preparsedPolicySetId: id });
  if (!plan.memo) return ask();
  const { answer, kept } = plan.memo.store.answer(memoKey(id, plan.memo.compared, call), ask);
  answers[kept ? 'memo' : 'cedar']++;
  return answer;
}

/**
 * Decides one request against a compiled policy set.
 *
 * - Cedar allow → `allow`, or `step_up` when any determining permit carries `@step_up`.
 *   `@max_ttl("N")` on determining permits caps the TTL at the smallest N (for step_up too).
 * - Cedar deny → `deny`; reasons are the `@reason`s of the determining forbids, or
 *   NO_PERMIT_REASON when nothing forbade and nothing permitted.
 * - Any error fails closed to `deny`: an erroring forbid is skipped by Cedar, so an allow next to
 *   an error might be one the failed policy would have refused.
 *
 * Cedar gets no schema here: with one, every call re-derived the action entities and type-checked
 * the request, most of the cost of a call. The policies were validated strictly against the schema
 * when compiled, and buildContext checks every value against the schema's kinds before the call, so
 * the request Cedar sees is one that validation would accept; what buildContext refuses is a deny.
 * Only what the task's policies read crosses into Cedar (see context-reads.ts).
 */
export function evaluate(compiled: CompiledPolicySet, request: PolicyRequest): PolicyDecision {
  const started = process.hrtime.bigint();
  const finish = (d: Omit<PolicyDecision, 'policyVersion' | 'evaluationMicros'>): PolicyDecision => ({
    ...d,
    policyVersion: compiled.version,
    evaluationMicros: Number((process.hrtime.bigint() - started) / 1000n),
  });
  // Sorted: Cedar reports the errors of one call in no fixed order.
  const failed = (errors: string[], determining: string[] = []) =>
    finish({ outcome: 'deny', reasons: [EVALUATION_FAILED_REASON], determining: [...determining].sort(), errors: [...errors].sort() });

  let context: Context;
  try {
    context = buildContext(compiled, request);
  } catch (err) {
    if (err instanceof CedarValueError) return failed([err.message]);
    throw err;
  }
  const answer = authorize(compiled.plans[request.task.name]!, request, context);
  if (answer.type === 'failure') return failed(answer.errors.map((e) => e.message));

  const { decision, diagnostics } = answer.response;
  if (diagnostics.errors.length) {
    return failed(
      diagnostics.errors.map((e) => `policy "${e.policyId}": ${e.error.message}`),
      diagnostics.errors.map((e) => e.policyId),
    );
  }
  const determining = [...diagnostics.reason].sort();
  const policies = determining.flatMap((id) => (compiled.policies[id] ? [compiled.policies[id]] : []));
  if (decision === 'deny') {
    const reasons = policies.map((p) => p.reason ?? `denied by policy "${p.id}"`);
    return finish({ outcome: 'deny', reasons: reasons.length ? reasons : [NO_PERMIT_REASON], determining, errors: [] });
  }
  const stepUps = policies.filter((p) => p.stepUp);
  const ttls = policies.flatMap((p) => (p.maxTtlSeconds === undefined ? [] : [p.maxTtlSeconds]));
  const approvals = stepUps.flatMap((p) => (p.approvals === undefined ? [] : [p.approvals]));
  const reasons = (stepUps.length ? stepUps : policies).flatMap((p) =>
    p.reason ? [p.reason] : stepUps.length ? [`step-up approval required by policy "${p.id}"`] : [],
  );
  return finish({
    outcome: stepUps.length ? 'step_up' : 'allow',
    reasons,
    determining,
    ...(ttls.length ? { maxTtlSeconds: Math.min(...ttls) } : {}),
    ...(approvals.length ? { requiredApprovals: Math.max(...approvals) } : {}),
    errors: [],
  });
}

/**
 * Asks the task's `@auto_approve` policies about a step-up, in the same context as the decision: a
 * permit that applies approves, a forbid that applies denies (Cedar: forbid wins). Undefined when none
 * applies, the task has none, or evaluation failed: then people decide, as they would without them.
 */
export function evaluateApprover(compiled: CompiledPolicySet, request: PolicyRequest): ApproverAnswer | undefined {
  const plan = compiled.approverPlans[request.task.name];
  if (!plan) return undefined;
  let context: Context;
  try {
    context = buildContext(compiled, request);
  } catch (err) {
    if (err instanceof CedarValueError) return undefined;
    throw err;
  }
  const answer = authorize(plan, request, context);
  if (answer.type === 'failure' || answer.response.diagnostics.errors.length) return undefined;
  const [first] = [...answer.response.diagnostics.reason].sort();
  if (!first) return undefined;
  return { vote: answer.response.decision === 'allow' ? 'approve' : 'deny', policy: first, reason: compiled.policies[first]?.reason ?? null };
}
