import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { ACTIVE_GRANTS_CAP } from '../../src/decisions/history.js';
import { sha256Hex } from '../../src/lib/hash.js';
import { post } from '../support/broker.js';
import { FEED_KEY, signalType, startWorld, type World } from './support.js';

// Each signal kind changing an outcome, through HTTP against a real broker and Postgres.
let w: World;
const deployPolicies = `@id("deploy-ci") permit (principal is Workload, action == Action::"deploy", resource) when { principal.kind == "ci" };
@id("deploy-token-age") @reason("the identity token is too old")
forbid (principal, action == Action::"deploy", resource) when { context.identity.token_age_seconds > 300 };
@id("deploy-hosted") @reason("self-hosted runners may not deploy")
forbid (principal, action == Action::"deploy", resource) unless { context.identity.claims has runner_environment && context.identity.claims.runner_environment == "github-hosted" };
@id("deploy-active") @reason("two deploy grants are active already")
forbid (principal, action == Action::"deploy", resource) when { context.broker.active_grants >= 2 };`;
const hourlyPolicies = `@id("hourly") permit (principal is Workload, action == Action::"hourly", resource);
@id("hourly-budget") @reason("hourly request budget spent")
forbid (principal, action == Action::"hourly", resource) when { context.broker.requests_last_hour >= 5 };`;
const explorePolicies = `@id("explore") @max_ttl("600") permit (principal is Workload, action == Action::"explore", resource);
@id("explore-first-time") @max_ttl("60") permit (principal is Workload, action == Action::"explore", resource) when { context.broker.task_is_new };
@id("explore-new-target") @reason("a target this workload has not used")
forbid (principal, action == Action::"explore", resource) when { context.broker.new_params.contains("target") && !context.broker.task_is_new };`;
// A claim GitLab CI tokens carry, which policy reads because settings.identity_claims names it.
const gitlabPolicies = `@id("gitlab-protected") permit (principal is Workload, action == Action::"gitlab-deploy", resource)
when { context.identity.claims has project_path && context.identity.claims.project_path == "acme/api" && context.identity.claims has ref_protected && context.identity.claims.ref_protected == "true" };`;
// The task names its target (`target: [account]`): a new memo to a known account is not a new target.
const transferPolicies = `@id("transfer") permit (principal is Workload, action == Action::"transfer", resource) unless { context.broker.target_is_new && !context.broker.task_is_new };`;
// An attestation present and true allows; absent (missing, stale, expired) it steps up; false denies.
const releasePolicies = `@id("release-attested") permit (principal is Workload, action == Action::"release", resource) when { context.signals has attested && context.signals.attested };
@id("release-unattested") @step_up @reason("no current attestation: an approver must confirm")
permit (principal is Workload, action == Action::"release", resource) unless { context.signals has attested };`;

const task = (name: string, workloads: string[], params: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => ({
  name,
  scopes: [name],
  audience: `https://${name}.example`,
  params,
  workloads,
  ...extra,
});

beforeAll(async () => {
  w = await startWorld({
    tasks: [
      task('deploy', ['pipeline'], { service: { type: 'string' } }),
      task('hourly', ['agent-1']),
      task('explore', ['agent-1'], { target: { type: 'string' } }, { default_ttl_seconds: 900 }),
      task('release', ['pipeline']),
      task('gitlab-deploy', ['pipeline']),
      task('transfer', ['agent-1'], { account: { type: 'string' }, memo: { type: 'string' } }, { target: ['account'] }),
    ],
    signal_types: [signalType('attested', 'workload', { type: 'boolean' })],
    policies: [
      { file: 'deploy.cedar', text: deployPolicies },
      { file: 'hourly.cedar', text: hourlyPolicies },
      { file: 'explore.cedar', text: explorePolicies },
      { file: 'release.cedar', text: releasePolicies },
      { file: 'gitlab.cedar', text: gitlabPolicies },
      { file: 'transfer.cedar', text: transferPolicies },
    ],
    settings: { novelty_baseline_days: 2, identity_claims: ['project_path', 'ref_protected'] },
  });
});
afterAll(() => w.stop());

const epoch = () => Math.floor(w.clock.now().getTime() / 1000);
const deploy = async (claims: Record<string, unknown> = {}, iat?: number) => w.grant(await w.pipeline(claims, iat), 'deploy', { service: 'api' });

describe('identity signals', () => {
  it('the token age: a token issued 400 s ago is refused by policy, a fresh one allowed', async () => {
    const issued = epoch() - 400;
    const old = await deploy({ exp: issued + 900 }, issued);
    expect(old.status).toBe(403);
    expect(old.body.reasons).toEqual(['the identity token is too old']);
    expect((await w.decision(old.body.decision_id)).signals.identity.token_age_seconds).toBe(400);
    expect((await deploy()).status).toBe(201);
  });

  it('claims named in settings.identity_claims reach policy and the decision record; others stay out', async () => {
    const gitlab = async (claims: Record<string, unknown>) => w.grant(await w.pipeline(claims), 'gitlab-deploy');
    const ok = await gitlab({ project_path: 'acme/api', ref_protected: 'true', pipeline_source: 'push' });
    expect(ok.status).toBe(201);
    const recorded = (await w.decision(ok.body.decision_id)).signals.identity.claims;
    expect(recorded).toMatchObject({ project_path: 'acme/api', ref_protected: 'true' });
    expect(recorded).not.toHaveProperty('pipeline_source');
    expect((await gitlab({ project_path: 'acme/api', ref_protected: 'false' })).status).toBe(403);
    expect((await gitlab({ project_path: 'acme/other', ref_protected: 'true' })).status).toBe(403);
    // Only strings pass: a boolean claim is absent, and the `has` guard denies.
    expect((await gitlab({ project_path: 'acme/api', ref_protected: true })).status).toBe(403);
    w.clock.advance(301); // the grant above expires: it must not count as active for the deploy tests
  });

  it('a client assertion is self-signed: claims it adds reach neither policy nor the record', async () => {
    w.clock.advance(7200); // past the hourly budget of earlier tests
    const res = await w.grant(await w.agentAssertion({ repository: 'acme/api', runner_environment: 'github-hosted', project_path: 'acme/api' }), 'hourly');
    expect(res.status).toBe(201);
    const identity = (await w.decision(res.body.decision_id)).signals.identity;
    expect(identity).toMatchObject({ method: 'client_assertion', claims: {} });
  });

  it('a claim: a self-hosted runner is refused; the 403 from /oauth2/token carries the decision id', async () => {
    expect((await deploy({ runner_environment: 'self-hosted' })).body.reasons).toEqual(['self-hosted runners may not deploy']);
    const exchanged = await post(
      `${w.broker.url}/oauth2/token`,
      {
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subject_token: await w.pipeline({ runner_environment: 'self-hosted' }),
        subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        task: 'deploy',
        task_params: JSON.stringify({ service: 'api' }),
      },
      {},
      true,
    );
    expect(exchanged.status).toBe(403);
    expect(exchanged.body).toMatchObject({ error: 'access_denied', decision_id: expect.any(String), reasons: ['self-hosted runners may not deploy'] });
    expect((await w.decision(exchanged.body.decision_id)).signals.identity.claims).toMatchObject({ runner_environment: 'self-hosted' });
  });
});

describe('broker-derived signals', () => {
  it('active grants: a third concurrent deploy grant is refused until one expires', async () => {
    w.clock.advance(1000); // earlier grants (5-minute TTL) have expired
    expect((await deploy()).status).toBe(201);
    expect((await deploy()).status).toBe(201);
    const third = await deploy();
    expect(third.body.reasons).toEqual(['two deploy grants are active already']);
    expect((await w.decision(third.body.decision_id)).signals.broker.active_grants).toBe(2);
    w.clock.advance(301);
    expect((await deploy()).status).toBe(201);
  });

  it('active grants are counted up to 1,000: a busy workload costs each request no more than that', async () => {
    w.clock.advance(1000);
    const now = w.clock.now();
    await sql`
      insert into grants (id, workload_id, task, params, scopes, audience, issued_at, expires_at, status, kid, token_sha256, identity)
      select gen_random_uuid(), 'pipeline', 'deploy', '{}'::jsonb, array['deploy'], 'https://deploy.example', ${now}, ${new Date(now.getTime() + 600_000)},
        'active', 'seeded', md5(g::text), '{"method":"oidc"}'::jsonb
      from generate_series(1, ${ACTIVE_GRANTS_CAP + 200}) g`.execute(w.broker.database.db);
    const res = await deploy();
    expect(res.status).toBe(403);
    expect(res.body.reasons).toEqual(['two deploy grants are active already']);
    expect((await w.decision(res.body.decision_id)).signals.broker.active_grants).toBe(ACTIVE_GRANTS_CAP);
    await sql`delete from grants where kid = 'seeded'`.execute(w.broker.database.db);
  });

  it('active grants are not counted for a task whose policies never read them: recorded as null', async () => {
    w.clock.advance(1000);
    const res = await w.grant(await w.agentAssertion(), 'hourly');
    expect(res.status).toBe(201);
    const broker = (await w.decision(res.body.decision_id)).signals.broker;
    expect(broker.active_grants).toBeNull();
    // The facts the task's policies do read are there as always.
    expect(broker.requests_last_hour).toEqual(expect.any(Number));
  });

  it('the 1 h request rate: the sixth request within the hour is refused though the minute rate is low', async () => {
    w.clock.advance(7200);
    const hourly = async () => w.grant(await w.agentAssertion(), 'hourly');
    for (let i = 0; i < 5; i++) {
      expect((await hourly()).status).toBe(201);
      w.clock.advance(300);
    }
    const sixth = await hourly();
    expect(sixth.body.reasons).toEqual(['hourly request budget spent']);
    expect((await w.decision(sixth.body.decision_id)).signals.broker).toMatchObject({ requests_last_hour: 5, requests_last_minute: 0 });
    // Refused requests count too; once the first two have left the hour, four remain.
    w.clock.advance(3600 - 5 * 300 + 360);
    expect((await hourly()).status).toBe(201);
  });

  it('novelty: a first use gets a short TTL, a new target is refused, and the baseline window runs out', async () => {
    const explore = async (target: string) => w.grant(await w.agentAssertion(), 'explore', { target });
    const first = await explore('alpha');
    expect(first.status).toBe(201);
    expect(first.body.expires_in).toBe(60);
    expect((await w.decision(first.body.decision_id)).signals.broker).toMatchObject({ task_is_new: true, target_is_new: true, new_params: ['target'] });
    expect((await explore('alpha')).body.expires_in).toBe(600);
    const beta = await explore('beta');
    expect(beta.body.reasons).toEqual(['a target this workload has not used']);
    expect((await w.decision(beta.body.decision_id)).signals.broker).toMatchObject({ task_is_new: false, new_params: ['target'] });
    // novelty_baseline_days is 2: three days later nothing is remembered, and the task is new again.
    w.clock.advance(3 * 86_400);
    const again = await explore('alpha');
    expect(again.body.expires_in).toBe(60);
    expect((await w.decision(again.body.decision_id)).signals.broker.task_is_new).toBe(true);
  });
});

describe('novelty of a task whose target is named', () => {
  it('target_is_new follows only the target params: another memo is not a new account', async () => {
    w.clock.advance(1000);
    const transfer = async (account: string, memo: string) => w.grant(await w.agentAssertion(), 'transfer', { account, memo });
    const first = await transfer('acc-1', 'rent');
    expect(first.status).toBe(201);
    const otherMemo = await transfer('acc-1', 'deposit');
    expect(otherMemo.status).toBe(201);
    expect((await w.decision(otherMemo.body.decision_id)).signals.broker).toMatchObject({ task_is_new: false, target_is_new: false, new_params: ['memo'] });
    const otherAccount = await transfer('acc-2', 'rent');
    expect(otherAccount.status).toBe(403);
    expect((await w.decision(otherAccount.body.decision_id)).signals.broker).toMatchObject({ target_is_new: true, new_params: ['account'] });
  });
});

describe('pushed signals that are absent step up, per policy', () => {
  const release = async () => w.grant(await w.pipeline(), 'release');
  const attest = (extra: Record<string, unknown> = {}) => w.push([{ type: 'attested', subject: 'pipeline', value: true, observed_at: w.clock.now().toISOString(), ...extra }]);

  it('an expired signal (expires_at) is absent: allow becomes step_up', async () => {
    expect((await attest({ expires_at: new Date(w.clock.now().getTime() + 120_000).toISOString() })).status).toBe(202);
    expect((await release()).status).toBe(201);
    w.clock.advance(121);
    const expired = await release();
    expect(expired.status).toBe(202);
    expect(expired.body.reasons).toEqual(['no current attestation: an approver must confirm']);
    expect((await w.decision(expired.body.decision_id)).signals.used).toContainEqual(expect.objectContaining({ type: 'attested', status: 'expired', value: true }));
  });

  it('a stale signal is absent: allow becomes step_up once it passes max_age_seconds', async () => {
    await attest();
    w.clock.advance(600);
    expect((await release()).status).toBe(201);
    w.clock.advance(1);
    const stale = await release();
    expect(stale.status).toBe(202);
    expect((await w.decision(stale.body.decision_id)).signals.used).toContainEqual(expect.objectContaining({ type: 'attested', status: 'stale', age_seconds: 601 }));
  });

  it('PUT of a signal type changes what is fresh: a shorter max age makes a 2-minute-old signal stale', async () => {
    await attest();
    w.clock.advance(120);
    expect((await release()).status).toBe(201);
    const spec = { ...signalType('attested', 'workload', { type: 'boolean' }), max_age_seconds: 60, name: undefined };
    const put = await w.admin('PUT', '/signal-types/attested', spec);
    expect(put.status).toBe(200);
    expect((await release()).status).toBe(202);
    expect((await w.admin('PUT', '/signal-types/attested', { ...spec, max_age_seconds: 600 })).status).toBe(200);
    expect((await release()).status).toBe(201);
  });

  it('PUT of a signal source rotates its key: the old key is refused, the new one accepted', async () => {
    const rotated = 'feed-key-rotated-for-decision-tests-9876543210';
    const put = await w.admin('PUT', '/signal-sources/feed', { api_key_sha256: sha256Hex(rotated) });
    expect(put.status).toBe(200);
    try {
      expect((await attest()).status).toBe(401);
      const pushed = await w.push([{ type: 'attested', subject: 'pipeline', value: false, observed_at: w.clock.now().toISOString() }], rotated);
      expect(pushed.status).toBe(202);
      expect((await release()).status).toBe(403);
    } finally {
      expect((await w.admin('PUT', '/signal-sources/feed', { api_key_sha256: sha256Hex(FEED_KEY) })).status).toBe(200);
    }
  });
});
