import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { compilePolicySet, PolicyValidationError, taskReadsContext } from '../../src/policy/policy-set.js';
import { compileWith, FIXTURES, fixturePolicies, fixtureRegistry } from './support.js';

function problemsOf(text: string, file = 'bad.cedar'): string[] {
  try {
    compileWith([...fixturePolicies(), { file, text }]);
  } catch (err) {
    if (err instanceof PolicyValidationError) return err.problems;
    throw err;
  }
  throw new Error('expected a PolicyValidationError');
}

describe('taskReadsContext', () => {
  const path = ['broker', 'active_grants'];
  it('is true only for the tasks a policy that reads the path can decide', () => {
    const compiled = compileWith([
      { file: 'a.cedar', text: 'permit (principal, action == Action::"deploy-prod", resource) when { context.broker.active_grants < 3 };' },
      { file: 'b.cedar', text: 'permit (principal, action == Action::"refund-payment", resource) when { context.broker.requests_last_minute < 3 };' },
    ]);
    expect(taskReadsContext(compiled, 'deploy-prod', path)).toBe(true);
    expect(taskReadsContext(compiled, 'refund-payment', path)).toBe(false);
    expect(taskReadsContext(compiled, 'refund-payment', ['broker', 'requests_last_minute'])).toBe(true);
  });

  it('counts a read by an @auto_approve approver, and a policy scoped to every action', () => {
    const approver = compileWith([
      { file: 'a.cedar', text: '@step_up permit (principal, action == Action::"deploy-prod", resource);\n@auto_approve permit (principal, action == Action::"deploy-prod", resource) when { context.broker.active_grants == 0 };' },
    ]);
    expect(taskReadsContext(approver, 'deploy-prod', path)).toBe(true);
    const everyAction = compileWith([{ file: 'a.cedar', text: 'forbid (principal, action, resource) when { context.broker.active_grants > 50 };' }]);
    expect(taskReadsContext(everyAction, 'refund-payment', path)).toBe(true);
  });
});

describe('compilePolicySet', () => {
  it('compiles the example policies with @id ids', () => {
    const compiled = compileWith();
    expect(compiled.version).toMatch(/^[0-9a-f]{64}$/);
    expect(compiled.policyIds).toContain('deploy-prod-trusted-runner');
    expect(compiled.policies['refund-payment-agent']).toMatchObject({ effect: 'permit', maxTtlSeconds: 120, stepUp: false });
    expect(compiled.policies['export-customer-data-new-target']).toMatchObject({ stepUp: true });
    expect(compiled.warnings).toEqual([]);
  });

  it('names policies without @id as <file>#<index> in source order, past ten policies', () => {
    const text = Array.from({ length: 12 }, (_, i) => `permit (principal, action == Action::"deploy-prod", resource) when { ${i} == ${i} };`).join('\n');
    const compiled = compileWith([{ file: 'many.cedar', text }]);
    expect(compiled.policyIds).toEqual(Array.from({ length: 12 }, (_, i) => `many.cedar#${i}`));
  });

  it('refuses a policy that reads an unregistered signal, naming file, line and policy', () => {
    const problems = problemsOf('\n@id("reads-ghost")\npermit (principal, action == Action::"deploy-prod", resource)\nwhen { context.signals.ghost_score > 3 };');
    expect(problems.join('\n')).toMatch(/bad\.cedar:4:\d+: policy "reads-ghost": .*ghost_score/);
  });

  it('refuses a `has` test of an unregistered signal, which Cedar alone would accept as never true', () => {
    const problems = problemsOf(
      '@id("ghost-forbid")\nforbid (principal, action, resource)\nwhen { context.signals has edr_verdict && context.signals.edr_verdict == "infected" };',
    );
    expect(problems).toEqual([expect.stringMatching(/^bad\.cedar:1:1: policy "ghost-forbid": `has` tests context\.signals\.edr_verdict/)]);
  });

  it('lets policy read an identity claim only once settings.identity_claims names it', () => {
    const text = 'permit (principal, action == Action::"deploy-prod", resource) when { context.identity.claims has project_path && context.identity.claims.project_path == "acme/api" };';
    expect(problemsOf(text).join('\n')).toMatch(/project_path/);
    const compiled = compilePolicySet({ ...fixtureRegistry(), identityClaims: ['project_path'], policies: [{ file: 'gitlab.cedar', text }] });
    expect(compiled.identityClaims).toContain('project_path');
    expect(compiled.identityClaims).toContain('repository');
    // The claims are part of what decides an answer: another list is another policy version.
    expect(compiled.version).not.toBe(compilePolicySet({ ...fixtureRegistry(), identityClaims: ['project_path', 'ref_protected'], policies: [{ file: 'gitlab.cedar', text }] }).version);
  });

  it('refuses a signal read without a `has` guard', () => {
    const problems = problemsOf('permit (principal, action == Action::"deploy-prod", resource) when { context.signals.runner_trust == "trusted" };');
    expect(problems.join('\n')).toMatch(/bad\.cedar:1:\d+: policy "bad\.cedar#0": .*optional attribute/);
  });

  it('refuses a param the task does not declare', () => {
    const problems = problemsOf('permit (principal, action == Action::"refund-payment", resource) when { context.params.currency == "EUR" };');
    expect(problems.join('\n')).toMatch(/bad\.cedar.*currency/);
  });

  it('refuses comparing a decimal param with a Long', () => {
    expect(problemsOf('permit (principal, action == Action::"refund-payment", resource) when { context.params.amount <= 100 };')).not.toEqual([]);
  });

  it('reports parse errors with their location, duplicate ids and misplaced annotations', () => {
    expect(problemsOf('permit (principal, action resource);')[0]).toMatch(/^bad\.cedar:1:\d+: unexpected token/);
    expect(problemsOf('@id("deploy-prod-ci") permit (principal, action, resource);').join('\n')).toMatch(/"deploy-prod-ci" is used by more than one/);
    expect(problemsOf('@step_up forbid (principal, action, resource);').join('\n')).toMatch(/@step_up has no effect on a forbid/);
    expect(problemsOf('@max_ttl("soon") permit (principal, action, resource);').join('\n')).toMatch(/@max_ttl must be whole seconds/);
  });

  it('refuses registries with duplicate or unusable names', () => {
    const registry = fixtureRegistry();
    const compile = () =>
      compilePolicySet({ ...registry, tasks: [...registry.tasks, registry.tasks[0]!], calendars: ['change_window', 'Freeze-Window'], policies: [] });
    expect(compile).toThrow(/calendar "Freeze-Window": use snake_case[\s\S]*task "deploy-prod" is registered twice/);
  });

  it('gives the same version for the same input and another for any change', () => {
    const a = compileWith();
    expect(compileWith([...fixturePolicies()].reverse()).version).toBe(a.version);
    const changed = fixturePolicies().map((f) => (f.file === 'refund-payment.cedar' ? { ...f, text: f.text.replace('100.00', '50.00') } : f));
    expect(compileWith(changed).version).not.toBe(a.version);
  });
});

describe('the demo policies', () => {
  it('are the tested example policies', () => {
    const demo = path.join(FIXTURES, '..', '..', '..', 'config', 'demo', 'policies');
    for (const { file, text } of fixturePolicies()) expect(readFileSync(path.join(demo, file), 'utf8'), file).toBe(text);
  });
});
