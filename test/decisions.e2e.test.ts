import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { metricValue, startTestBroker, post, TEST_ADMIN_KEY, type TestBroker } from './support/broker.js';
import { startFakeIssuer, type FakeIssuer } from './support/fake-issuer.js';
import { agentKey, type AgentKey } from './support/fixtures.js';
import { sha256Hex } from '../src/lib/hash.js';
import { signalFollowUps } from '../src/signals/follow-up.js';

// Monday 2026-11-23 10:00 UTC = 11:00 in Berlin: inside the change window.
const MONDAY_MORNING = '2026-11-23T10:00:00Z';
const ATTESTOR_KEY = 'attestor-key-for-tests-0123456789';
const admin = { authorization: `Bearer ${TEST_ADMIN_KEY}` };

let broker: TestBroker;
let ci: FakeIssuer;
let agent: AgentKey;
let exporter: AgentKey;
let edr: { jwk: Record<string, unknown>; key: CryptoKey };

const policies = {
  deploy: `@id("deploy-ci") @max_ttl("900") permit (principal is Workload, action == Action::"deploy-prod", resource) when { principal.kind == "ci" };
@id("deploy-window") @reason("the production change window is closed")
forbid (principal, action == Action::"deploy-prod", resource) unless { context.broker.calendars.change_window };
@id("deploy-runner") @reason("the runner is not attested as trusted")
forbid (principal, action == Action::"deploy-prod", resource) unless { context.signals has runner_trust && context.signals.runner_trust == "trusted" };
@id("deploy-host") @reason("the host is compromised")
forbid (principal, action == Action::"deploy-prod", resource) when { context.signals has host_posture && context.signals.host_posture == "compromised" };`,
  refund: `@id("refund-agent") @max_ttl("120") permit (principal is Workload, action == Action::"refund-payment", resource)
  when { principal.kind == "agent" && context.params.amount.lessThanOrEqual(decimal("100.00")) };
@id("refund-rate") @reason("request rate spike") forbid (principal, action == Action::"refund-payment", resource) when { context.broker.requests_last_minute > 10 };`,
  exportKnown: `@id("export-service") permit (principal is Workload, action == Action::"export-customer-data", resource) when { principal.kind == "service" };`,
  exportNew: `@id("export-new-target") @step_up @reason("first export to this destination")
permit (principal is Workload, action == Action::"export-customer-data", resource) when { principal.kind == "service" && context.broker.target_is_new };`,
};

function config(policyFiles: Array<{ file: string; text: string }>) {
  return {
    issuers: [{ id: 'ci', kind: 'oidc', issuer: ci.url, jwks_uri: ci.jwksUri, audiences: ['tessera'], algorithms: ['RS256'] }],
    workloads: [
      { id: 'api-deploy', kind: 'ci', owner: 'api-team', bindings: [{ issuer: 'ci', claims: { repository: 'acme/api' } }] },
      { id: 'agent-1', kind: 'agent', owner: 'ops', public_keys: [agent.jwk] },
      { id: 'exporter', kind: 'service', owner: 'data', public_keys: [exporter.jwk] },
    ],
    tasks: [
      { name: 'deploy-prod', scopes: ['deploy:prod'], audience: 'https://deploy.example', params: { service: { type: 'string' } }, workloads: ['api-deploy'] },
      { name: 'refund-payment', scopes: ['payments:refund'], audience: 'https://pay.example', params: { amount: { type: 'number', maximum: 1000 } }, workloads: ['agent-1'] },
      { name: 'export-customer-data', scopes: ['customers:export'], audience: 'https://crm.example', params: { destination: { type: 'string' } }, workloads: ['exporter'] },
    ],
    signal_types: [
      { name: 'runner_trust', description: 'runner attestation', reason: 'untrusted runners must not deploy', subject_kind: 'workload', value: { type: 'string', enum: ['trusted', 'untrusted'] }, sources: ['attestor'], max_age_seconds: 900 },
      { name: 'host_posture', description: 'EDR verdict for the runner host', reason: 'a compromised host leaks credentials', subject_kind: 'host', subject_claim: 'runner_name', value: { type: 'string' }, sources: ['edr'], max_age_seconds: 600 },
    ],
    signal_sources: [
      { id: 'attestor', api_key_sha256: sha256Hex(ATTESTOR_KEY) },
      { id: 'edr', public_keys: [edr.jwk] },
    ],
    calendars: [{ name: 'change_window', timezone: 'Europe/Berlin', windows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '08:00', end: '18:00' }] }],
    policies: policyFiles,
  };
}
const allPolicies = [
  { file: 'deploy.cedar', text: policies.deploy },
  { file: 'refund.cedar', text: policies.refund },
  { file: 'export.cedar', text: `${policies.exportKnown}\n${policies.exportNew}` },
];

beforeAll(async () => {
  ci = await startFakeIssuer({ now: () => broker.clock.now() });
  agent = await agentKey('agent-1');
  exporter = await agentKey('exporter');
  const pair = await generateKeyPair('ES256');
  edr = { jwk: { ...(await exportJWK(pair.publicKey)), kid: 'edr-1' }, key: pair.privateKey };
  const { ManualClock } = await import('../src/lib/clock.js');
  broker = await startTestBroker(config(allPolicies), { clock: new ManualClock(MONDAY_MORNING) });
});
afterAll(async () => {
  await broker.stop();
  await ci.close();
});

const now = () => broker.clock.now();
const deploy = async (claims: Record<string, unknown> = {}) =>
  post(`${broker.url}/v1/grants`, { task: 'deploy-prod', params: { service: 'api' } }, { authorization: `Bearer ${await ci.token(claims)}` });
const refund = async (amount: number) =>
  post(`${broker.url}/v1/grants`, { task: 'refund-payment', params: { amount } }, { authorization: `Bearer ${await agent.assertion(broker.url, {}, Math.floor(now().getTime() / 1000))}` });
const exportTo = async (destination: string) =>
  post(`${broker.url}/v1/grants`, { task: 'export-customer-data', params: { destination } }, { authorization: `Bearer ${await exporter.assertion(broker.url, {}, Math.floor(now().getTime() / 1000))}` });
const pushSignals = (signals: unknown[], auth = `Bearer ${ATTESTOR_KEY}`) => post(`${broker.url}/v1/signals`, { signals }, { authorization: auth });
/** A signed request of the `edr` source for exactly this batch: body_sha256 over the bytes pushSignals sends. */
const edrSigned = async (signals: unknown[], o: { exp?: number; bodySha256?: string | null } = {}) => {
  const iat = Math.floor(now().getTime() / 1000);
  const digest = o.bodySha256 === undefined ? sha256Hex(JSON.stringify({ signals })) : o.bodySha256;
  return `Bearer ${await new SignJWT({ jti: crypto.randomUUID(), ...(digest !== null && { body_sha256: digest }) })
    .setProtectedHeader({ alg: 'ES256', kid: 'edr-1' })
    .setIssuer('edr')
    .setSubject('edr')
    .setAudience(`${broker.url}/v1/signals`)
    .setIssuedAt(iat)
    .setExpirationTime(o.exp ?? iat + 60)
    .sign(edr.key)}`;
};
const trust = (value: string, observed = now()) => pushSignals([{ type: 'runner_trust', subject: 'api-deploy', value, observed_at: observed.toISOString() }]);
const decision = async (id: string) => (await fetch(`${broker.url}/v1/admin/decisions/${id}`, { headers: admin })).json() as Promise<Record<string, any>>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** tessera_policy_evaluation_seconds's count and sum, as Prometheus scrapes them. */
const evaluations = async () => ({
  count: await metricValue(broker.url, 'tessera_policy_evaluation_seconds_count'),
  sum: await metricValue(broker.url, 'tessera_policy_evaluation_seconds_sum'),
});

describe('live signals change the outcome', () => {
  it('a missing runner signal denies; trusted allows; untrusted denies again', async () => {
    const missing = await deploy();
    expect(missing.status).toBe(403);
    expect(missing.body.reasons).toEqual(['the runner is not attested as trusted']);
    expect((await trust('trusted')).status).toBe(202);
    const ok = await deploy();
    expect(ok.status).toBe(201);
    expect(decodeJwt(ok.body.access_token).decision_id).toBe(ok.body.decision_id);
    expect((await trust('untrusted')).status).toBe(202);
    expect((await deploy()).status).toBe(403);
  });

  it('a stale signal is absent: allow flips to deny once it is older than its max age', async () => {
    await trust('trusted');
    expect((await deploy()).status).toBe(201);
    broker.clock.advance(901);
    const stale = await deploy();
    expect(stale.status).toBe(403);
    const d = await decision(stale.body.decision_id);
    expect(d.signals.used).toContainEqual(expect.objectContaining({ type: 'runner_trust', status: 'stale', value: 'trusted', source: 'attestor', age_seconds: 901 }));
    broker.clock.set(MONDAY_MORNING);
  });

  it('a host signal follows the verified runner_name claim', async () => {
    await trust('trusted');
    const compromised = [{ type: 'host_posture', subject: 'runner-7', value: 'compromised', observed_at: now().toISOString() }];
    const edrAuth = await edrSigned(compromised);
    const pushed = await pushSignals(compromised, edrAuth);
    expect(pushed.status).toBe(202);
    expect((await deploy({ runner_name: 'runner-7' })).body.reasons).toEqual(['the host is compromised']);
    expect((await deploy({ runner_name: 'runner-8' })).status).toBe(201);
    // The signed request's jti is single-use.
    expect((await pushSignals([{ type: 'host_posture', subject: 'runner-7', value: 'ok', observed_at: now().toISOString() }], edrAuth)).status).toBe(401);
  });

  it('concurrent requests read their own signals, though they share one statement', async () => {
    await trust('trusted');
    const observed = now().toISOString();
    const hosts = [
      { type: 'host_posture', subject: 'runner-c1', value: 'compromised', observed_at: observed },
      { type: 'host_posture', subject: 'runner-c2', value: 'ok', observed_at: observed },
    ];
    expect((await pushSignals(hosts, await edrSigned(hosts))).status).toBe(202);
    const runners = Array.from({ length: 12 }, (_, i) => (i % 3 === 0 ? 'runner-c1' : i % 3 === 1 ? 'runner-c2' : 'runner-c3'));
    const tokens = await Promise.all(runners.map((runner_name) => ci.token({ runner_name })));
    const answers = await Promise.all(tokens.map((t) => post(`${broker.url}/v1/grants`, { task: 'deploy-prod', params: { service: 'api' } }, { authorization: `Bearer ${t}` })));
    expect(answers.map((a) => a.status)).toEqual(runners.map((r) => (r === 'runner-c1' ? 403 : 201)));
    for (const [i, a] of answers.entries()) {
      const used = (await decision(a.body.decision_id)).signals.used as Array<Record<string, unknown>>;
      const host = used.find((u) => u.type === 'host_posture');
      const expected = runners[i] === 'runner-c3' ? { subject: 'runner-c3', status: 'missing' } : { subject: runners[i], status: 'fresh', value: runners[i] === 'runner-c1' ? 'compromised' : 'ok' };
      expect(host, `request ${i} (${runners[i]})`).toMatchObject(expected);
      expect(used.find((u) => u.type === 'runner_trust')).toMatchObject({ subject: 'api-deploy', status: 'fresh', value: 'trusted' });
    }
  });

  it('refuses a signed source request that asks to live longer than 5 minutes (401, not a 500)', async () => {
    const iat = Math.floor(now().getTime() / 1000);
    const ok = [{ type: 'host_posture', subject: 'runner-7', value: 'ok', observed_at: now().toISOString() }];
    for (const exp of [iat + 301, 9_999_999_999_999]) {
      expect((await pushSignals(ok, await edrSigned(ok, { exp }))).status).toBe(401);
    }
    expect((await pushSignals(ok, await edrSigned(ok, { exp: iat + 300 }))).status).toBe(202);
  });

  it('a signed source request carries exactly the batch it signed (body_sha256)', async () => {
    const signed = [{ type: 'host_posture', subject: 'runner-9', value: 'ok', observed_at: now().toISOString() }];
    const other = [{ type: 'host_posture', subject: 'runner-9', value: 'compromised', observed_at: now().toISOString() }];
    // Another batch under an intercepted, unused token is refused, and nothing is stored.
    const swapped = await pushSignals(other, await edrSigned(signed));
    expect(swapped.status).toBe(401);
    expect(JSON.stringify(swapped.body)).not.toContain('body_sha256');
    // Without the claim, or with a malformed one, the signature covers no body: refused too.
    expect((await pushSignals(signed, await edrSigned(signed, { bodySha256: null }))).status).toBe(401);
    expect((await pushSignals(signed, await edrSigned(signed, { bodySha256: 'ABC' }))).status).toBe(401);
    const stored = await sql<{ n: string }>`select count(*) as n from signals where subject = 'runner-9'`.execute(broker.database.db);
    expect(Number(stored.rows[0]!.n)).toBe(0);
    expect((await pushSignals(signed, await edrSigned(signed))).status).toBe(202);
  });

  it('the change window calendar closes deploys on Sunday', async () => {
    await trust('trusted');
    broker.clock.set('2026-11-22T10:00:00Z');
    try {
      await trust('trusted');
      expect((await deploy()).body.reasons).toEqual(['the production change window is closed']);
    } finally {
      broker.clock.set(MONDAY_MORNING);
    }
  });
});

describe('signal ingestion is governed', () => {
  it('refuses a type the source may not send, naming the entry; stores nothing of a bad batch', async () => {
    const before = await countSignals();
    const res = await pushSignals([
      { type: 'runner_trust', subject: 'api-deploy', value: 'trusted', observed_at: now().toISOString() },
      { type: 'host_posture', subject: 'runner-1', value: 'ok', observed_at: now().toISOString() },
      { type: 'runner_trust', subject: 'api-deploy', value: 'maybe', observed_at: now().toISOString() },
      { type: 'made_up', subject: 'x', value: 1, observed_at: now().toISOString() },
    ]);
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual([
      { field: 'signals.1.type', reason: 'source "attestor" may not send host_posture' },
      { field: 'signals.2.value', reason: 'must be one of: trusted, untrusted' },
      { field: 'signals.3.type', reason: 'signal type "made_up" is not registered' },
    ]);
    expect(await countSignals()).toBe(before);
    expect((await pushSignals([{ type: 'runner_trust', subject: 'a', value: 'trusted', observed_at: now().toISOString() }], 'Bearer wrong-key-0123456789')).status).toBe(401);
    expect((await pushSignals([{ type: 'runner_trust', subject: 'api-deploy', value: 'trusted', observed_at: new Date(now().getTime() + 3_600_000).toISOString() }])).body.errors[0].reason).toBe('is in the future');
  });
});

describe('policy outcomes', () => {
  it('caps the TTL by @max_ttl and detects a request-rate spike', async () => {
    const first = await refund(50);
    expect(first.status).toBe(201);
    expect(first.body.expires_in).toBe(120);
    expect((await refund(500)).body.reasons).toEqual(['no policy permits this request']);
    const results = [];
    for (let i = 0; i < 10; i++) results.push((await refund(10)).status);
    const spike = await refund(10);
    expect(spike.status).toBe(403);
    expect(spike.body.reasons).toEqual(['request rate spike']);
    const d = await decision(spike.body.decision_id);
    expect(d.signals.broker.requests_last_minute).toBeGreaterThan(10);
    broker.clock.advance(180);
    expect((await refund(10)).status).toBe(201);
  });

  it('answers a repeated question from the policy memo, and asks Cedar again when a count crosses a literal', async () => {
    broker.clock.advance(180);
    const answers = async () => ({
      cedar: await metricValue(broker.url, 'tessera_policy_cedar_calls_total'),
      memo: await metricValue(broker.url, 'tessera_policy_memo_answers_total'),
    });
    const before = await answers();
    // The refund policies see the amount only as at most 100.00 or above, and the minute count as
    // below 10, 10, or above: twelve refunds ask at most three questions, whatever earlier tests asked.
    // The first ten read 0-9 requests, the eleventh 10, the twelfth 11 and is refused.
    const statuses = [];
    for (let i = 0; i < 12; i++) statuses.push((await refund(7 + i)).status);
    expect(statuses).toEqual([...Array(11).fill(201), 403]);
    const after = await answers();
    expect(after.cedar - before.cedar + (after.memo - before.memo)).toBe(12);
    expect(after.memo - before.memo).toBeGreaterThanOrEqual(9);
  });

  it('times each policy evaluation in /metrics; a request refused before policy is not timed', async () => {
    broker.clock.advance(180);
    const before = await evaluations();
    expect((await refund(20)).status).toBe(201);
    const after = await evaluations();
    expect(after.count).toBe(before.count + 1);
    expect(after.sum).toBeGreaterThan(before.sum);
    // The exporter is not on refund-payment's list: the gate refuses it before any policy runs.
    const gated = await post(`${broker.url}/v1/grants`, { task: 'refund-payment', params: { amount: 1 } }, { authorization: `Bearer ${await exporter.assertion(broker.url, {}, Math.floor(now().getTime() / 1000))}` });
    expect(gated.status).toBe(403);
    expect(await evaluations()).toEqual(after);
  });

  it('a concurrent burst of one workload passes the rate limit by none', async () => {
    // A fresh window: the minute before this one and the one now hold no request of agent-1.
    broker.clock.advance(180);
    const assertions = await Promise.all(Array.from({ length: 20 }, () => agent.assertion(broker.url, {}, Math.floor(now().getTime() / 1000))));
    const burst = await Promise.all(
      assertions.map((a) => post(`${broker.url}/v1/grants`, { task: 'refund-payment', params: { amount: 10 } }, { authorization: `Bearer ${a}` })),
    );
    // Each request reads the requests asked before it: the 1st to the 11th read 0..10 and pass, the rest read more.
    expect(burst.filter((r) => r.status === 201)).toHaveLength(11);
    const denied = burst.filter((r) => r.status === 403);
    expect(denied).toHaveLength(9);
    expect(new Set(denied.map((r) => r.body.reasons.join()))).toEqual(new Set(['request rate spike']));
    const seen = await Promise.all(burst.map(async (r) => (await decision(r.body.decision_id)).signals.broker.requests_last_minute));
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));

    // Re-deciding the grants (a re-evaluation, here a dry run) is not a request: it counts none.
    const counted = () => broker.deps.requests.ownSince('agent-1', new Date(0));
    const before = counted();
    const preview = await post(`${broker.url}/v1/admin/grants:reevaluate?dry_run=true`, {}, admin);
    expect(preview.body.evaluated).toBeGreaterThanOrEqual(11);
    expect(counted()).toBe(before);
  });

  it('a new export destination needs step-up; a destination used before does not', async () => {
    // Without the step-up policy the exporter uses one destination; that use becomes its baseline.
    const withoutStepUp = config([allPolicies[0]!, allPolicies[1]!, { file: 'export.cedar', text: policies.exportKnown }]);
    const applied = await post(`${broker.url}/v1/admin/config`, withoutStepUp, admin);
    expect(applied.status).toBe(201);
    expect((await exportTo('s3://known-bucket')).status).toBe(201);
    // Restore the version with the step-up policy (applied at start-up as version 1).
    const restored = await post(`${broker.url}/v1/admin/config/versions/1/restore`, {}, admin);
    expect(restored.body).toMatchObject({ changed: true, restored_from: '1' });
    expect((await exportTo('s3://known-bucket')).status).toBe(201);
    const fresh = await exportTo('s3://somewhere-new');
    expect(fresh.status).toBe(202);
    expect(fresh.body).toMatchObject({ status: 'pending', approval_id: expect.any(String), reasons: ['first export to this destination'] });
    const d = await decision(fresh.body.decision_id);
    expect(d.signals.broker).toMatchObject({ target_is_new: true, task_is_new: false, new_params: ['destination'] });
  });

  it('rejects a policy that reads an unregistered signal, naming the file; nothing is applied', async () => {
    const versions = await (await fetch(`${broker.url}/v1/admin/config/versions`, { headers: admin })).json() as { items: unknown[] };
    const bad = config([...allPolicies, { file: 'sneaky.cedar', text: `@id("sneaky") forbid (principal, action, resource) when { context.signals has vibe && context.signals.vibe == "bad" };` }]);
    const res = await post(`${broker.url}/v1/admin/config`, bad, admin);
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body.errors)).toMatch(/sneaky\.cedar.*vibe/);
    const after = await (await fetch(`${broker.url}/v1/admin/config/versions`, { headers: admin })).json() as { items: unknown[] };
    expect(after.items.length).toBe(versions.items.length);
  });
});

describe('continuous authorization', () => {
  it('a posture signal revokes the active grant it no longer allows; introspection says inactive', async () => {
    const rs = (await post(`${broker.url}/v1/admin/resource-servers`, { name: 'deployer' }, admin)).body as { client_id: string; client_secret: string };
    const basic = { authorization: `Basic ${Buffer.from(`${rs.client_id}:${rs.client_secret}`).toString('base64')}` };
    await trust('trusted');
    const minted = await deploy();
    expect(minted.status).toBe(201);
    expect((await post(`${broker.url}/oauth2/introspect`, { token: minted.body.access_token }, basic, true)).body.active).toBe(true);

    expect((await trust('untrusted')).status).toBe(202);
    await signalFollowUps(broker.deps).settled();
    const grant = await broker.database.db.selectFrom('grants').selectAll().where('id', '=', minted.body.grant_id).executeTakeFirstOrThrow();
    expect(grant).toMatchObject({ status: 'revoked', ended_by: 'policy:reevaluation' });
    expect(grant.end_reason).toContain('the runner is not attested as trusted');
    const refusal = await decision(grant.end_decision_id!);
    expect(refusal).toMatchObject({ outcome: 'deny', grant_id: grant.id, request: { reevaluation_of: grant.id } });
    expect((await post(`${broker.url}/oauth2/introspect`, { token: minted.body.access_token }, basic, true)).body).toEqual({ active: false });
  });

  it('a grant whose signal went stale is swept; a new policy version re-evaluates after a dry run', async () => {
    const { reevaluateDueGrants } = await import('../src/decisions/reevaluation.js');
    // The grant is decided on an observation already 800 s old (max age 900 s). Time only moves
    // forward here, so that observation is the newest one about the runner.
    broker.clock.advance(1000);
    await trust('trusted', new Date(now().getTime() - 800_000));
    const stale = await deploy();
    expect(stale.status).toBe(201);
    broker.clock.advance(50);
    expect((await reevaluateDueGrants(broker.deps, now())).detail.revoked).toBe(0); // not stale yet
    broker.clock.advance(150);
    const swept = await reevaluateDueGrants(broker.deps, now());
    expect(swept.detail.revoked).toBeGreaterThanOrEqual(1);
    expect((await broker.database.db.selectFrom('grants').select('status').where('id', '=', stale.body.grant_id).executeTakeFirstOrThrow()).status).toBe('revoked');

    // Had a fresh observation arrived meanwhile, the sweep would re-decide and keep the grant.
    await trust('trusted', new Date(now().getTime() - 800_000));
    const kept = await deploy();
    broker.clock.advance(150);
    await trust('trusted');
    broker.clock.advance(100);
    await reevaluateDueGrants(broker.deps, now());
    expect((await broker.database.db.selectFrom('grants').select('status').where('id', '=', kept.body.grant_id).executeTakeFirstOrThrow()).status).toBe('active');

    await trust('trusted');
    const live = await deploy();
    const stricter = config([{ file: 'deploy.cedar', text: `${policies.deploy}\n@id("deploy-freeze") @reason("deploy freeze") forbid (principal, action == Action::"deploy-prod", resource);` }, allPolicies[1]!, allPolicies[2]!]);
    expect((await post(`${broker.url}/v1/admin/config`, stricter, admin)).status).toBe(201);
    const preview = await post(`${broker.url}/v1/admin/grants:reevaluate?dry_run=true`, {}, admin);
    expect(preview.body).toMatchObject({ dry_run: true, revoked: expect.arrayContaining([expect.objectContaining({ grant_id: live.body.grant_id })]) });
    expect((await broker.database.db.selectFrom('grants').select('status').where('id', '=', live.body.grant_id).executeTakeFirstOrThrow()).status).toBe('active');
    const done = await post(`${broker.url}/v1/admin/grants:reevaluate`, {}, admin);
    expect(done.body.revoked.map((r: { grant_id: string }) => r.grant_id)).toContain(live.body.grant_id);
    expect((await broker.database.db.selectFrom('grants').select(['status', 'end_reason']).where('id', '=', live.body.grant_id).executeTakeFirstOrThrow())).toMatchObject({ status: 'revoked', end_reason: 're-evaluation: deploy freeze' });
    expect((await post(`${broker.url}/v1/admin/config`, config(allPolicies), admin)).status).toBe(201);
  });
});

describe('admin edits keep the policies in force', () => {
  it('after an admin edits one task, policies still decide (no fail-open to the task list)', async () => {
    const put = await fetch(`${broker.url}/v1/admin/tasks/refund-payment`, {
      method: 'PUT',
      headers: { ...admin, 'content-type': 'application/json' },
      body: JSON.stringify({ scopes: ['payments:refund'], audience: 'https://pay.example', params: { amount: { type: 'number', maximum: 1000 } }, workloads: ['agent-1'], description: 'edited' }),
    });
    expect(put.status).toBe(200);
    broker.clock.advance(120);
    const over = await refund(500);
    expect(over.status).toBe(403);
    expect(over.body.reasons).toEqual(['no policy permits this request']);
  });
});

describe('signal types, sources and policies through the admin API', () => {
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${broker.url}/v1/admin${path}`, { method, headers: { ...admin, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: res.status, body: (res.status === 204 ? {} : await res.json()) as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
  };

  it('lists and reads entries; refuses a policy or a removal that would not validate, naming why', async () => {
    expect((await call('GET', '/signal-types')).body.items.map((t: { name: string }) => t.name).sort()).toEqual(['host_posture', 'runner_trust']);
    expect((await call('GET', '/signal-sources/attestor')).body).toMatchObject({ id: 'attestor' });
    expect((await call('GET', '/policies/deploy.cedar')).body.text).toContain('deploy-window');
    const sneaky = await call('PUT', '/policies/sneaky.cedar', { text: '@id("sneaky") forbid (principal, action, resource) when { context.signals has vibe };' });
    expect(sneaky.status).toBe(400);
    expect(JSON.stringify(sneaky.body.errors)).toMatch(/sneaky\.cedar.*vibe/);
    const inUse = await call('DELETE', '/signal-types/runner_trust');
    expect(inUse.status).toBe(400);
    expect(JSON.stringify(inUse.body.errors)).toMatch(/runner_trust/);
    expect((await call('GET', '/policies/missing.cedar')).status).toBe(404);
  });

  it('a policy added through the API decides at once, and removing it restores the previous answer', async () => {
    await trust('trusted');
    expect((await deploy()).status).toBe(201);
    const freeze = await call('PUT', '/policies/freeze.cedar', { text: '@id("freeze") @reason("deploy freeze") forbid (principal, action == Action::"deploy-prod", resource);' });
    expect(freeze.status).toBe(201);
    expect((await deploy()).body.reasons).toEqual(['deploy freeze']);
    expect((await call('DELETE', '/policies/freeze.cedar')).status).toBe(204);
    expect((await deploy()).status).toBe(201);
  });
});

describe('decision records and what-if', () => {
  it('records the request, signals with value, source and age, policy version, determining policies and latency', async () => {
    await trust('trusted');
    broker.clock.advance(30);
    const ok = await deploy();
    const d = await decision(ok.body.decision_id);
    expect(d).toMatchObject({
      outcome: 'allow',
      workload: 'api-deploy',
      task: 'deploy-prod',
      determining_policies: ['deploy-ci'],
      grant_id: ok.body.grant_id,
      ttl_seconds: 300,
      max_ttl_seconds: 900,
      request: { task: 'deploy-prod', params: { service: 'api' } },
    });
    expect(d.policy_version).toMatch(/^[0-9a-f]{64}$/);
    expect(d.latency_us).toBeGreaterThan(0);
    const use = (d.signals.used as Array<Record<string, unknown>>).find((u) => u.type === 'runner_trust')!;
    expect(use).toEqual({ type: 'runner_trust', subject: 'api-deploy', status: 'fresh', value: 'trusted', source: 'attestor', observed_at: expect.any(String), age_seconds: 30, fresh_until: expect.any(String) });
    // Fresh for its type's 900 s from when it was observed: the moment the grant's sweep looks again.
    expect(Date.parse(use.fresh_until as string) - Date.parse(use.observed_at as string)).toBe(900_000);
    expect(d.signals.identity).toMatchObject({ method: 'oidc', claims: { repository: 'acme/api' }, token_sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(JSON.stringify(d)).not.toMatch(/eyJ/);
    const list = await (await fetch(`${broker.url}/v1/admin/decisions?workload=api-deploy&outcome=allow&limit=1`, { headers: admin })).json() as { items: Array<{ id: string }>; next_cursor: string };
    expect(list.items).toHaveLength(1);
    expect(list.next_cursor).toBeTruthy();
  });

  it('evaluates a hypothetical request against the current or a candidate policy, recording nothing', async () => {
    const before = await countDecisions();
    const url = `${broker.url}/v1/admin/decisions:evaluate`;
    const request = { workload: 'api-deploy', task: 'deploy-prod', params: { service: 'api' }, signals: { runner_trust: 'trusted' }, broker: { calendars: { change_window: true } } };
    const current = await post(url, request, admin);
    expect(current.body).toMatchObject({ outcome: 'allow', candidate: false, maxTtlSeconds: 900 });
    const candidate = await post(url, { ...request, policies: [{ file: 'deploy.cedar', text: policies.deploy.replace('@max_ttl("900")', '@max_ttl("60")') }] }, admin);
    expect(candidate.body).toMatchObject({ outcome: 'allow', candidate: true, maxTtlSeconds: 60 });
    expect((await post(url, { ...request, signals: {} }, admin)).body.outcome).toBe('deny');
    expect(await countDecisions()).toBe(before);
  });
});

async function countSignals() {
  return Number((await broker.database.db.selectFrom('signals').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()).n);
}
async function countDecisions() {
  return Number((await broker.database.db.selectFrom('decisions').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()).n);
}
