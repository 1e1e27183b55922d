import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signalType, startWorld, type World } from './support.js';

let w: World;
const policy = `@id("deploy-ci") @max_ttl("600") permit (principal is Workload, action == Action::"deploy", resource) when { principal.kind == "ci" };
@id("deploy-runner") @reason("the runner is not attested as trusted")
forbid (principal, action == Action::"deploy", resource) unless { context.signals has runner_trust && context.signals.runner_trust == "trusted" };
@id("refund-any") permit (principal, action == Action::"refund", resource) when { context.params.amount.lessThanOrEqual(decimal("100.0")) };`;

beforeAll(async () => {
  w = await startWorld({
    tasks: [
      { name: 'deploy', scopes: ['deploy'], audience: 'https://deploy.example', params: { service: { type: 'string' } }, workloads: ['pipeline'] },
      // The agent is not on the refund task's list, although the policy alone would permit it.
      { name: 'refund', scopes: ['refund'], audience: 'https://pay.example', params: { amount: { type: 'number' } }, workloads: ['pipeline'] },
    ],
    signal_types: [signalType('runner_trust', 'workload', { type: 'string', enum: ['trusted', 'untrusted'] })],
    calendars: [{ name: 'change_window', timezone: 'UTC', windows: [{ days: ['mon'], start: '00:00', end: '23:59' }] }],
    policies: [{ file: 'p.cedar', text: policy }],
  });
});
afterAll(() => w.stop());

const whatIf = (body: Record<string, unknown>) => w.admin('POST', '/decisions:evaluate', body);
const deployQ = { workload: 'pipeline', task: 'deploy', params: { service: 'api' }, signals: { runner_trust: 'trusted' } };

describe('what-if decides as the broker does', () => {
  it('a workload missing from the task list is denied, as the broker denies it', async () => {
    const answer = await whatIf({ workload: 'agent-1', task: 'refund', params: { amount: 5 } });
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ outcome: 'deny', reasons: ['workload agent-1 may not request task refund'], candidate: false });
    const real = await w.grant(await w.agentAssertion(), 'refund', { amount: 5 });
    expect(real.status).toBe(403);
    expect(real.body.reasons).toEqual(answer.body.reasons);
  });

  it('matches the real decision for the same signals, and a suspended workload is denied', async () => {
    expect((await w.push([{ type: 'runner_trust', subject: 'pipeline', value: 'trusted', observed_at: w.clock.now().toISOString() }])).status).toBe(202);
    const real = await w.grant(await w.pipeline(), 'deploy', { service: 'api' });
    expect(real.status).toBe(201);
    expect((await whatIf(deployQ)).body).toMatchObject({ outcome: 'allow', maxTtlSeconds: 600, determining: ['deploy-ci'] });
    expect((await whatIf({ ...deployQ, signals: {} })).body).toMatchObject({ outcome: 'deny', reasons: ['the runner is not attested as trusted'] });

    expect((await w.admin('POST', '/workloads/pipeline/suspend', { reason: 'incident' })).status).toBe(200);
    try {
      expect((await whatIf(deployQ)).body).toMatchObject({ outcome: 'deny', reasons: ['workload pipeline is suspended'] });
    } finally {
      expect((await w.admin('POST', '/workloads/pipeline/activate', { reason: 'resolved' })).status).toBe(200);
    }
  });
});

describe('what-if input is checked against the registered types', () => {
  it('answers 400 naming each bad signal, param, calendar and new param', async () => {
    const bad = await whatIf({ ...deployQ, signals: { runner_trust: 'maybe', ghost: 1 }, broker: { calendars: { freeze: true }, new_params: ['service', 'region'] } });
    expect(bad.status).toBe(400);
    expect(bad.body.errors).toEqual([
      { field: 'signals.runner_trust', reason: 'must be one of: trusted, untrusted' },
      { field: 'signals.ghost', reason: 'signal type "ghost" is not registered' },
      { field: 'broker.calendars.freeze', reason: 'no calendar "freeze" is registered' },
      { field: 'broker.new_params.1', reason: 'task deploy has no param "region"' },
    ]);
    const params = await whatIf({ ...deployQ, params: { service: 7 } });
    expect(params.status).toBe(400);
    expect(params.body.errors).toEqual([{ field: 'params.service', reason: expect.stringMatching(/string/) }]);
    // A number Cedar cannot hold exactly is refused as the grant path refuses it, not evaluated into a deny.
    const precise = await whatIf({ workload: 'pipeline', task: 'refund', params: { amount: 5.00001 } });
    expect(precise.body.errors).toEqual([{ field: 'params.amount', reason: '5.00001 has more than 4 decimal places' }]);
    const real = await w.grant(await w.pipeline(), 'refund', { amount: 5.00001 });
    expect(real.status).toBe(400);
    expect(real.body.errors).toEqual(precise.body.errors);
    const typed = await whatIf({ ...deployQ, signals: { runner_trust: 1 } });
    expect(typed.body.errors).toEqual([{ field: 'signals.runner_trust', reason: 'must be a string, got 1' }]);
  });

  it('evaluates a candidate set without applying it, and names the problems of a bad one', async () => {
    const candidate = await whatIf({ ...deployQ, policies: [{ file: 'p.cedar', text: policy.replace('@max_ttl("600")', '@max_ttl("60")') }] });
    expect(candidate.body).toMatchObject({ outcome: 'allow', maxTtlSeconds: 60, candidate: true });
    expect(candidate.body.policyVersion).not.toBe((await whatIf(deployQ)).body.policyVersion);
    // An empty candidate set permits nothing: deny by default, never the task list alone.
    expect((await whatIf({ ...deployQ, policies: [] })).body).toMatchObject({ outcome: 'deny', reasons: ['no policy permits this request'] });
    const broken = await whatIf({ ...deployQ, policies: [{ file: 'bad.cedar', text: 'permit (principal, action == Action::"deploy", resource) when { context.signals.vibe };' }] });
    expect(broken.status).toBe(400);
    expect(broken.body.errors[0]).toMatchObject({ field: 'policies', reason: expect.stringMatching(/^bad\.cedar:1:\d+: .*vibe/) });
  });
});
