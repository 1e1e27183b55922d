import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { TesseraError } from '../lib/errors.js';
import { fieldIssues } from '../lib/validation.js';
import { evaluate } from './evaluate.js';
import type { CompiledPolicySet } from './policy-set.js';
import type { BrokerSignals, PolicyDecision, PolicyRequest } from './policy-request.js';
import { policyTestCase, type PolicyTestCase, type PolicyTestCaseInput } from './policy-test.spec.js';

/** A test case with the file it came from, when it came from one. */
export type LoadedPolicyTestCase = PolicyTestCase & { file?: string };

/** The outcome of one case: `failures` is a readable diff, empty when the case passed. */
export interface PolicyTestResult {
  name: string;
  file?: string;
  passed: boolean;
  failures: string[];
  decision: PolicyDecision;
}

/** A policy test file that does not parse; `problems` name the file and case. */
export class PolicyTestFileError extends TesseraError {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(400, 'policy_test_invalid', `policy tests are invalid:\n  - ${problems.join('\n  - ')}`);
    this.name = 'PolicyTestFileError';
    this.problems = problems;
  }
}

/**
 * Broker facts a case does not mention: a quiet workload (no recent requests, no active grants)
 * asking for a task and target it has used before, with every calendar closed. Closed is the
 * neutral calendar state because an open window is what usually grants something.
 */
export function neutralBroker(calendars: readonly string[]): BrokerSignals {
  return {
    requests_last_minute: 0,
    requests_last_hour: 0,
    active_grants: 0,
    task_is_new: false,
    target_is_new: false,
    new_params: [],
    calendars: Object.fromEntries(calendars.map((c) => [c, false])),
  };
}

/** The full request a case describes, neutral defaults filled in. */
export function caseRequest(compiled: CompiledPolicySet, c: PolicyTestCase): PolicyRequest {
  const r = c.request;
  const task = typeof r.task === 'string' ? { name: r.task } : r.task;
  const neutral = neutralBroker(compiled.calendars);
  return {
    workload: r.workload,
    task: { name: task.name, risk: task.risk ?? compiled.taskRisks[task.name] ?? 'medium' },
    params: r.params,
    purpose: r.purpose,
    identity: {
      issuer: r.identity.issuer ?? 'https://issuer.policy-test',
      subject: r.identity.subject ?? r.workload.id,
      token_age_seconds: r.identity.token_age_seconds ?? 0,
      claims: r.identity.claims ?? {},
    },
    signals: r.signals,
    broker: { ...neutral, ...r.broker, calendars: { ...neutral.calendars, ...r.broker.calendars } },
  };
}

function diff(c: PolicyTestCase, d: PolicyDecision): string[] {
  const failures: string[] = [];
  const got = `reasons ${JSON.stringify(d.reasons)}, determined by ${JSON.stringify(d.determining)}`;
  if (d.outcome !== c.expect.outcome) failures.push(`outcome: expected ${c.expect.outcome}, got ${d.outcome} (${got})`);
  const ttl = c.expect.max_ttl_seconds;
  if (ttl !== undefined && (d.maxTtlSeconds ?? null) !== ttl) {
    failures.push(`max_ttl_seconds: expected ${ttl ?? 'no cap'}, got ${d.maxTtlSeconds ?? 'no cap'}`);
  }
  for (const want of c.expect.reasons_include ?? []) {
    if (!d.reasons.some((r) => r.includes(want))) failures.push(`reasons: expected one to include ${JSON.stringify(want)}, got ${JSON.stringify(d.reasons)}`);
  }
  if (d.errors.length) failures.push(...d.errors.map((e) => `evaluation error: ${e}`));
  return failures;
}

/** Runs each case against the compiled set; accepts cases as written (defaults are applied here). */
export function runPolicyTests(
  compiled: CompiledPolicySet,
  cases: ReadonlyArray<PolicyTestCaseInput & { file?: string }>,
): PolicyTestResult[] {
  return cases.map(({ file, ...input }, i) => {
    const parsed = policyTestCase.safeParse(input);
    if (!parsed.success) {
      const where = `${file ?? 'cases'}[${i}]`;
      throw new PolicyTestFileError(fieldIssues(parsed.error).map((f) => `${where}.${f.field}: ${f.reason}`));
    }
    const decision = evaluate(compiled, caseRequest(compiled, parsed.data));
    const failures = diff(parsed.data, decision);
    return { name: parsed.data.name, ...(file ? { file } : {}), passed: failures.length === 0, failures, decision };
  });
}

/** Reads every `*.yaml` / `*.yml` file of `dir` (name order); each holds a list of test cases. */
export async function loadPolicyTestFolder(dir: string): Promise<LoadedPolicyTestCase[]> {
  const files = (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).sort();
  const cases: LoadedPolicyTestCase[] = [];
  const problems: string[] = [];
  for (const file of files) {
    let doc: unknown;
    try {
      doc = parseYaml(await readFile(path.join(dir, file), 'utf8'));
    } catch (err) {
      problems.push(`${file}: not valid YAML: ${(err as Error).message}`);
      continue;
    }
    if (!Array.isArray(doc)) {
      problems.push(`${file}: expected a list of test cases`);
      continue;
    }
    doc.forEach((raw, i) => {
      const parsed = policyTestCase.safeParse(raw);
      if (parsed.success) cases.push({ ...parsed.data, file });
      else problems.push(...fieldIssues(parsed.error).map((f) => `${file}[${i}].${f.field}: ${f.reason}`));
    });
  }
  if (problems.length) throw new PolicyTestFileError(problems);
  return cases;
}
