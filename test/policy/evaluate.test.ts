import { describe, expect, it } from 'vitest';
import { evaluate, EVALUATION_FAILED_REASON, NO_PERMIT_REASON } from '../../src/policy/evaluate.js';
import type { PolicyRequest } from '../../src/policy/policy-request.js';
import { compileWith, fixturePolicies } from './support.js';

const compiled = compileWith();

function req(over: Partial<PolicyRequest> & Pick<PolicyRequest, 'task'>): PolicyRequest {
  return {
    workload: { id: 'w-1', kind: 'agent', owner: 'team-a' },
    params: {},
    purpose: 'test',
    identity: { issuer: 'https://issuer.test', subject: 'w-1', token_age_seconds: 5, claims: {} },
    signals: {},
    broker: { requests_last_minute: 0, requests_last_hour: 0, active_grants: 0, task_is_new: false, target_is_new: false, new_params: [], calendars: { change_window: false } },
    ...over,
  };
}

const refund = (amount: number, over: Partial<PolicyRequest> = {}) =>
  req({ task: { name: 'refund-payment', risk: 'medium' }, params: { order_id: 'o-1', amount }, ...over });

const deploy = (over: Partial<PolicyRequest> = {}) =>
  req({
    workload: { id: 'ci-web', kind: 'ci', owner: 'team-web' },
    task: { name: 'deploy-prod', risk: 'high' },
    params: { service: 'web' },
    identity: { issuer: 'https://token.actions.githubusercontent.com', subject: 'repo:acme/web:ref:refs/heads/main', token_age_seconds: 30, claims: { ref: 'refs/heads/main', sha: 'abc' } },
    signals: { runner_trust: 'trusted', signing_key_current: true },
    broker: { ...req({ task: { name: 'x', risk: 'low' } }).broker, calendars: { change_window: true } },
    ...over,
  });

describe('evaluate', () => {
  it('allows on a permit, with its TTL cap and the policy version', () => {
    const d = evaluate(compiled, refund(99.5));
    expect(d).toMatchObject({ outcome: 'allow', determining: ['refund-payment-agent'], maxTtlSeconds: 120, errors: [], policyVersion: compiled.version });
    expect(d.reasons).toEqual(['agents refund up to 100 per request']);
    expect(d.evaluationMicros).toBeGreaterThanOrEqual(0);
  });

  it('compares non-integer decimal params exactly', () => {
    expect(evaluate(compiled, refund(100)).outcome).toBe('allow');
    expect(evaluate(compiled, refund(100.0001)).outcome).toBe('deny');
    expect(evaluate(compiled, refund(0.01)).outcome).toBe('allow');
  });

  it('refuses rather than rounds a number Cedar decimals cannot hold', () => {
    const d = evaluate(compiled, refund(100.00001));
    expect(d).toMatchObject({ outcome: 'deny', determining: [] });
    expect(d.errors[0]).toMatch(/params\.amount: .*more than 4 decimal places/);
  });

  it('denies on a forbid with its @reason', () => {
    const d = evaluate(compiled, refund(5, { broker: { ...refund(5).broker, requests_last_minute: 11 } }));
    expect(d).toMatchObject({ outcome: 'deny', determining: ['refund-payment-rate-spike'], reasons: ['request rate spike: more than 10 requests in the last minute'] });
  });

  it('denies by default when nothing permits', () => {
    const d = evaluate(compiled, refund(5, { workload: { id: 'svc-x', kind: 'service', owner: 'o' } }));
    expect(d).toMatchObject({ outcome: 'deny', determining: [], reasons: [NO_PERMIT_REASON] });
  });

  it('turns an allow into step_up when a determining permit carries @step_up', () => {
    const exportReq = (targetIsNew: boolean) =>
      req({
        workload: { id: 'svc-rep', kind: 'service', owner: 'o' },
        task: { name: 'export-customer-data', risk: 'high' },
        params: { dataset: 'orders', destination: 's3://x' },
        broker: { ...refund(1).broker, target_is_new: targetIsNew, new_params: targetIsNew ? ['destination'] : [] },
      });
    expect(evaluate(compiled, exportReq(false))).toMatchObject({ outcome: 'allow', maxTtlSeconds: 300 });
    const d = evaluate(compiled, exportReq(true));
    expect(d).toMatchObject({ outcome: 'step_up', maxTtlSeconds: 300 });
    expect(d.determining).toEqual(['export-customer-data-new-target', 'export-customer-data-service']);
    expect(d.reasons).toEqual(['first export to this destination for this workload: an approver must confirm']);
  });

  it('caps the TTL at the smallest @max_ttl of the determining permits', () => {
    const extra = {
      file: 'short.cedar',
      text: '@max_ttl("60") permit (principal, action == Action::"refund-payment", resource) when { context.purpose like "*urgent*" };',
    };
    const withShort = compileWith([...fixturePolicies(), extra]);
    expect(evaluate(withShort, refund(5, { purpose: 'urgent: double charge' }))).toMatchObject({ outcome: 'allow', maxTtlSeconds: 60 });
    expect(evaluate(withShort, refund(5))).toMatchObject({ outcome: 'allow', maxTtlSeconds: 120 });
  });

  it('treats a missing signal as absent, so the has-guarded condition does not hold', () => {
    expect(evaluate(compiled, deploy())).toMatchObject({ outcome: 'allow', maxTtlSeconds: 900 });
    const d = evaluate(compiled, deploy({ signals: { signing_key_current: true } }));
    expect(d).toMatchObject({ outcome: 'deny', determining: ['deploy-prod-trusted-runner'], reasons: ['the runner is not attested as trusted'] });
    expect(evaluate(compiled, deploy({ signals: {} })).determining).toEqual(['deploy-prod-signing-key-current', 'deploy-prod-trusted-runner']);
  });

  it('fails closed with an error when the request does not fit the schema', () => {
    const d = evaluate(compiled, refund(5, { signals: { unregistered: 'x' } }));
    expect(d.outcome).toBe('deny');
    expect(d.errors.join()).toMatch(/unregistered/);
    expect(evaluate(compiled, req({ task: { name: 'no-such-task', risk: 'low' } })).outcome).toBe('deny');
  });

  it('fails closed on a value of the wrong type, which Cedar without a schema would compare as unequal', () => {
    // `runner_trust == "trusted"` against the number 1 would be false, not an error: the forbid
    // `unless { … == "trusted" }` would fire here anyway, so test a forbid that would be skipped.
    const d = evaluate(compiled, deploy({ signals: { runner_trust: 1 } }));
    expect(d).toMatchObject({ outcome: 'deny', reasons: [EVALUATION_FAILED_REASON] });
    expect(d.errors).toEqual(['signals.runner_trust: must be a string, got 1']);
    expect(evaluate(compiled, deploy({ broker: { ...deploy().broker, calendars: {} } })).errors).toEqual(['broker.calendars.change_window: must be true or false, got undefined']);
    expect(evaluate(compiled, refund(5, { params: { order_id: 'o-1', amount: '5' } })).errors).toEqual(['params.amount: must be a number, got "5"']);
  });

  it('refuses an unregistered task even when a policy with an open action scope would permit it', () => {
    const open = compileWith([...fixturePolicies(), { file: 'open.cedar', text: '@id("open") permit (principal, action, resource);' }]);
    expect(evaluate(open, refund(5)).outcome).toBe('allow');
    const d = evaluate(open, req({ task: { name: 'no-such-task', risk: 'low' } }));
    expect(d).toMatchObject({ outcome: 'deny', errors: ['task "no-such-task" is not registered'] });
  });

  it('passes a context part read as a whole, and `has` on the context itself', () => {
    const whole = compileWith([
      ...fixturePolicies(),
      {
        file: 'whole.cedar',
        text: `@id("calendars-as-record") @reason("calendars") forbid (principal, action == Action::"refund-payment", resource) when { context.broker.calendars == { "change_window": true } };
@id("context-has") @reason("context has signals") forbid (principal, action == Action::"refund-payment", resource) when { context has signals && context.purpose == "probe" };`,
      },
    ]);
    expect(evaluate(whole, refund(5)).outcome).toBe('allow');
    expect(evaluate(whole, refund(5, { broker: { ...refund(5).broker, calendars: { change_window: true } } })).reasons).toEqual(['calendars']);
    expect(evaluate(whole, refund(5, { purpose: 'probe' })).reasons).toEqual(['context has signals']);
  });

  it('passes the task entity when a policy reads the resource', () => {
    const risky = compileWith([...fixturePolicies(), { file: 'risk.cedar', text: '@id("no-high") @reason("high risk") forbid (principal, action, resource) when { resource.risk == "high" };' }]);
    expect(evaluate(risky, deploy()).reasons).toEqual(['high risk']);
    expect(evaluate(risky, deploy({ task: { name: 'deploy-prod', risk: 'low' } })).outcome).toBe('allow');
  });

  it('passes only the known string identity claims', () => {
    const d = evaluate(compiled, deploy({ identity: { ...deploy().identity, claims: { ref: 'refs/heads/main', nested: { a: 1 }, repository: 42 } } }));
    expect(d.outcome).toBe('allow');
  });
});
