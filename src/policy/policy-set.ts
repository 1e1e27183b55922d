import { checkParseSchema, getCedarVersion, preparsePolicySet, validate, type SchemaJson, type StaticPolicySet } from '@cedar-policy/cedar-wasm/nodejs';
import { canonicalJson, sha256Hex } from '../lib/hash.js';
import { TesseraError } from '../lib/errors.js';
import { CALENDAR_NAME, generateCedarSchema, policyClaims, valueKinds, type SchemaInput, type ValueKinds } from './cedar-schema.js';
import { contextShape, unknownHasPaths } from './has-check.js';
import { readsPath, requestReads, type RequestReads } from './context-reads.js';
import { AnswerMemo, comparedValues, type ComparedValue } from './answer-memo.js';
import { describeCedarError, fileLocation, splitPolicyFiles, type PolicyFile, type SourcePolicy } from './policy-source.js';

/** Policies that do not parse or validate; each problem names the file, the policy and Cedar's message. */
export class PolicyValidationError extends TesseraError {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(400, 'policy_invalid', `policies are invalid:\n  - ${problems.join('\n  - ')}`);
    this.name = 'PolicyValidationError';
    this.problems = problems;
  }
}

/** What the evaluator needs to know about one policy, read from its annotations once. */
export interface CompiledPolicy {
  id: string;
  file: string;
  effect: 'permit' | 'forbid';
  reason?: string;
  stepUp: boolean;
  /** Absent when the policy sets no `@max_ttl`. */
  maxTtlSeconds?: number;
  /** `@approvals("N")` on a step-up permit: how many approvals its step-up needs at least. */
  approvals?: number;
  /** `@auto_approve`: a delegated approver, evaluated only on a step-up, never in the decision itself. */
  autoApprove: boolean;
}

/**
 * How one task's requests are evaluated: only the policies whose action scope can match it, and
 * only the parts of the request they read (see context-reads.ts).
 */
export interface TaskPlan {
  /** Id of the set in Cedar's preparsed cache; absent when compiled without preparsing. */
  readonly preparsedId?: string;
  /** The policies' text, parsed per call when there is no preparsed id. */
  readonly policies: StaticPolicySet;
  readonly reads: RequestReads;
  /**
   * Only on a preparsed set: the memo of Cedar's answers (one per version, shared by its plans), and
   * the values this plan's policies only compare with literals (see answer-memo.ts).
   */
  readonly memo?: { readonly store: AnswerMemo; readonly compared: readonly ComparedValue[] };
}

/** A validated policy version; evaluate() runs against it (parsing nothing when it was preparsed). */
export interface CompiledPolicySet {
  /** sha256 hex of the schema, the policy files and the Cedar version: what decides an answer. */
  readonly version: string;
  readonly schema: SchemaJson<string>;
  readonly policyIds: readonly string[];
  readonly policies: Readonly<Record<string, CompiledPolicy>>;
  readonly kinds: ValueKinds;
  readonly calendars: readonly string[];
  /** The identity-token claims policies may read (built-in and configured), sorted. */
  readonly identityClaims: readonly string[];
  /** Task name → risk, so policy tests can name a task without restating its risk. */
  readonly taskRisks: Readonly<Record<string, string>>;
  /** Task name → how its requests are evaluated. */
  readonly plans: Readonly<Record<string, TaskPlan>>;
  /** Task name → how its step-ups are put to its `@auto_approve` policies, for tasks any can match. */
  readonly approverPlans: Readonly<Record<string, TaskPlan>>;
  /** Cedar validator warnings (e.g. a policy that can never apply): worth showing, not fatal. */
  readonly warnings: readonly string[];
}

/**
 * Whether any policy that can decide a request for `task` (its plan, or its `@auto_approve` approvers)
 * reads the context at `path`, e.g. ['broker', 'active_grants']: a fact nobody reads need not be
 * computed. Conservative: a policy reading a whole record above the path counts as reading it.
 */
export function taskReadsContext(compiled: CompiledPolicySet, task: string, path: readonly string[]): boolean {
  return [compiled.plans[task], compiled.approverPlans[task]].some((plan) => plan !== undefined && readsPath(plan.reads.context, path));
}

/** Input of compilePolicySet: the registries the schema comes from, and the policy files. */
export interface PolicySetInput extends SchemaInput {
  policies: PolicyFile[];
}

export interface CompileOptions {
  /**
   * Put the set into Cedar's preparsed cache, so evaluation parses nothing, and keep Cedar's answers
   * (AnswerMemo). Only for sets that will decide many requests (the registry's): the cache lives as
   * long as the process and cannot be emptied, so a set compiled to validate, to test or to ask
   * what-if must not go there.
   */
  preparse?: boolean;
}

/** A TTL below this cannot carry a useful request; above a day is no longer "short-lived". */
const MAX_TTL_RANGE = { min: 10, max: 86_400 } as const;
/** Annotations that only make sense on a permit, since only permits can determine an allow. */
const PERMIT_ONLY = ['step_up', 'max_ttl', 'approvals'] as const;
/** Annotations of a decision that an approver policy, which decides no request, cannot carry. */
const NOT_ON_APPROVER = ['step_up', 'max_ttl', 'approvals'] as const;
/** `@approvals` may ask for as many approvals as a task's `approval.required` may. */
const APPROVALS_RANGE = { min: 1, max: 10 } as const;

/** Cedar caches preparsed sets per thread with no way to drop them, so each version is preparsed once. */
const preparsed = new Set<string>();

/**
 * The version of a policy set: a hash of everything that decides an answer (the Cedar version, the
 * schema generated from the registries, the policy files in name order). Cheap: nothing is parsed.
 */
export function policySetVersion(input: PolicySetInput): string {
  return versionOf(generateCedarSchema(input), input.policies);
}

function versionOf(schema: SchemaJson<string>, policies: PolicyFile[]): string {
  const sources = [...policies].sort((a, b) => (a.file < b.file ? -1 : 1));
  return sha256Hex(canonicalJson({ cedar: getCedarVersion(), schema, policies: sources }));
}

function duplicates(names: string[]): string[] {
  return names.filter((n, i) => names.indexOf(n) !== i);
}

function annotationProblems(p: SourcePolicy): string[] {
  const where = `${p.file}: policy "${p.id}"`;
  const problems: string[] = [];
  for (const a of PERMIT_ONLY) {
    if (p.effect === 'forbid' && a in p.annotations) problems.push(`${where}: @${a} has no effect on a forbid; put it on a permit`);
  }
  const ttl = p.annotations.max_ttl;
  if (ttl !== undefined) {
    const n = ttl === null || !/^\d+$/.test(ttl) ? NaN : Number(ttl);
    if (!(n >= MAX_TTL_RANGE.min && n <= MAX_TTL_RANGE.max)) {
      problems.push(`${where}: @max_ttl must be whole seconds from ${MAX_TTL_RANGE.min} to ${MAX_TTL_RANGE.max}, got ${JSON.stringify(ttl)}`);
    }
  }
  if (p.annotations.reason === null) problems.push(`${where}: @reason needs a text, e.g. @reason("the change window is closed")`);
  const approvals = p.annotations.approvals;
  if (approvals !== undefined) {
    const n = approvals === null || !/^\d+$/.test(approvals) ? NaN : Number(approvals);
    if (!(n >= APPROVALS_RANGE.min && n <= APPROVALS_RANGE.max)) {
      problems.push(`${where}: @approvals must be a whole number from ${APPROVALS_RANGE.min} to ${APPROVALS_RANGE.max}, got ${JSON.stringify(approvals)}`);
    } else if (!('step_up' in p.annotations)) problems.push(`${where}: @approvals says how many approvals a step-up needs; put it on a @step_up permit`);
  }
  if ('auto_approve' in p.annotations) {
    for (const a of NOT_ON_APPROVER) if (a in p.annotations) problems.push(`${where}: @${a} has no effect on an @auto_approve policy, which decides no request`);
  }
  return problems;
}

function compiledPolicy(p: SourcePolicy): CompiledPolicy {
  const ttl = p.annotations.max_ttl;
  return {
    id: p.id,
    file: p.file,
    effect: p.effect,
    ...(p.annotations.reason ? { reason: p.annotations.reason } : {}),
    stepUp: 'step_up' in p.annotations,
    ...(ttl ? { maxTtlSeconds: Number(ttl) } : {}),
    ...(p.annotations.approvals ? { approvals: Number(p.annotations.approvals) } : {}),
    autoApprove: 'auto_approve' in p.annotations,
  };
}

/** Whether a policy's action scope can match task `task` (unknown scope shapes count as yes). */
function mayApplyTo(json: SourcePolicy['json'], task: string): boolean {
  const action = json.action as { op: string; entity?: { id: string }; entities?: Array<{ id: string }> };
  if (action.op === '==') return action.entity?.id === task;
  if (action.op === 'in' && action.entities) return action.entities.some((e) => e.id === task);
  return true;
}

/**
 * Parses and strictly validates every policy against the schema generated from the registries and
 * returns the set, preparsed once under its version when asked. Throws PolicyValidationError.
 */
export function compilePolicySet(input: PolicySetInput, options: CompileOptions = {}): CompiledPolicySet {
  const problems: string[] = [];
  for (const c of input.calendars) if (!CALENDAR_NAME.test(c)) problems.push(`calendar "${c}": use snake_case (a-z, 0-9, _)`);
  for (const d of duplicates(input.calendars)) problems.push(`calendar "${d}" is registered twice`);
  for (const d of duplicates(input.signalTypes.map((s) => s.name))) problems.push(`signal type "${d}" is registered twice`);
  for (const d of duplicates(input.tasks.map((t) => t.name))) problems.push(`task "${d}" is registered twice`);
  for (const d of duplicates(input.policies.map((f) => f.file))) problems.push(`policy file "${d}" is given twice`);

  const schema = generateCedarSchema(input);
  const schemaCheck = checkParseSchema(schema);
  if (schemaCheck.type === 'failure') problems.push(...schemaCheck.errors.map((e) => describeCedarError('generated schema', e)));

  const { policies, problems: parseProblems } = splitPolicyFiles(input.policies);
  problems.push(...parseProblems);
  for (const d of duplicates(policies.map((p) => p.id))) {
    problems.push(`policy id "${d}" is used by more than one policy (${policies.filter((p) => p.id === d).map((p) => p.file).join(', ')})`);
  }
  policies.forEach((p) => problems.push(...annotationProblems(p)));
  if (problems.length) throw new PolicyValidationError(problems);

  const byId = new Map(policies.map((p) => [p.id, p]));
  const staticPolicies = Object.fromEntries(policies.map((p) => [p.id, p.text]));
  const fileText = new Map(input.policies.map((f) => [f.file, f.text]));
  const locate = (policyId: string, start = 0) => {
    const p = byId.get(policyId);
    if (!p) return `policy "${policyId}"`;
    return `${fileLocation(p.file, fileText.get(p.file)!, p.offset + start)}: policy "${policyId}"`;
  };
  const answer = validate({ schema, policies: { staticPolicies }, validationSettings: { mode: 'strict' } });
  if (answer.type === 'failure') throw new PolicyValidationError(answer.errors.map((e) => describeCedarError('validation', e)));
  for (const v of answer.validationErrors) problems.push(describeCedarError(locate(v.policyId, v.error.sourceLocations?.[0]?.start), v.error));
  const shape = contextShape(schema);
  for (const p of policies) {
    for (const path of unknownHasPaths(p.json, shape)) {
      problems.push(`${locate(p.id)}: \`has\` tests ${path}, which no task context declares (an unregistered signal, undeclared param or unknown calendar is never present)`);
    }
  }
  if (problems.length) throw new PolicyValidationError(problems);
  const warnings = answer.validationWarnings.map((v) => describeCedarError(locate(v.policyId), v.error));

  const version = versionOf(schema, input.policies);
  // One set per task, holding only the policies whose action scope can match it: Cedar's cost grows
  // with the policies it evaluates, and a policy scoped to another action can neither apply nor err
  // for this one, so each task's set decides exactly as the whole set would.
  // `@auto_approve` policies are in sets of their own: they answer a step-up, and a permit among them
  // in the decision's set would allow the very request it is meant to approve.
  const isApprover = (p: SourcePolicy) => 'auto_approve' in p.annotations;
  const store = new AnswerMemo();
  const planOf = (subset: SourcePolicy[], id: string): TaskPlan => ({
    policies: Object.fromEntries(subset.map((p) => [p.id, p.text])),
    reads: requestReads(subset.map((p) => p.json)),
    ...(options.preparse ? { preparsedId: id, memo: { store, compared: comparedValues(subset.map((p) => p.json)) } } : {}),
  });
  const plans = Object.fromEntries(
    input.tasks.map((t) => [t.name, planOf(policies.filter((p) => !isApprover(p) && mayApplyTo(p.json, t.name)), `${version}:${t.name}`)]),
  );
  const approverPlans = Object.fromEntries(
    input.tasks.flatMap((t) => {
      const approvers = policies.filter((p) => isApprover(p) && mayApplyTo(p.json, t.name));
      return approvers.length ? [[t.name, planOf(approvers, `${version}:${t.name}:approver`)]] : [];
    }),
  );
  if (options.preparse && !preparsed.has(version)) {
    const results = [...Object.values(plans), ...Object.values(approverPlans)].map((p) => preparsePolicySet(p.preparsedId!, { staticPolicies: p.policies }));
    const failed = results.flatMap((r) => (r.type === 'failure' ? r.errors : []));
    if (failed.length) throw new PolicyValidationError(failed.map((e) => describeCedarError('preparse', e)));
    preparsed.add(version);
  }

  return Object.freeze({
    version,
    schema,
    policyIds: policies.map((p) => p.id),
    policies: Object.fromEntries(policies.map((p) => [p.id, compiledPolicy(p)])),
    kinds: valueKinds(input),
    calendars: [...input.calendars].sort(),
    identityClaims: policyClaims(input),
    taskRisks: Object.fromEntries(input.tasks.map((t) => [t.name, t.risk])),
    plans,
    approverPlans,
    warnings,
  });
}
