import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { metricValue, startTestBroker, post, type TestBroker } from '../support/broker.js';
import { startFakeIssuer, type FakeIssuer } from '../support/fake-issuer.js';
import { agentKey, type AgentKey } from '../support/fixtures.js';

const LEEWAY = 60;
const MAX_AGE = 600;
/** The broker's limits for RFC 7523 assertions (src/identity/authenticate.ts). */
const MAX_ASSERTION_AGE = 300;
const ASSERTION_LEEWAY = 30;
const WORKFLOW = 'acme/api/.github/workflows/deploy.yml@refs/heads/main';

let broker: TestBroker;
let ci: FakeIssuer;
let agent: AgentKey;
let retiredAgent: AgentKey;
let ecKey: CryptoKey;

beforeAll(async () => {
  ci = await startFakeIssuer({ now: () => broker.clock.now() });
  agent = await agentKey('agent-1');
  retiredAgent = await agentKey('old-agent');
  const ec = await generateKeyPair('ES256', { extractable: true });
  ecKey = ec.privateKey;
  // One EC key trusted by two inline issuers: one allows only RS256, the other ES256.
  const jwks = { keys: [{ ...(await exportJWK(ec.publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' }] };
  broker = await startTestBroker({
    issuers: [
      { id: 'ci', issuer: ci.url, jwks_uri: ci.jwksUri, audiences: ['tessera'], algorithms: ['RS256'], leeway_seconds: LEEWAY, max_token_age_seconds: MAX_AGE },
      { id: 'rs-only', issuer: 'https://rs-only.example', jwks, audiences: ['tessera'], algorithms: ['RS256'] },
      { id: 'es-ok', issuer: 'https://es-ok.example', jwks, audiences: ['tessera'], algorithms: ['ES256'] },
    ],
    workloads: [
      {
        id: 'pipeline',
        kind: 'ci',
        owner: 'api-team',
        bindings: [{ issuer: 'ci', claims: { repository: 'acme/api', job_workflow_ref: { pattern: 'acme/api/\\.github/workflows/(deploy|release)\\.yml@refs/heads/main' } } }],
      },
      { id: 'old-pipeline', kind: 'ci', owner: 'api-team', status: 'retired', bindings: [{ issuer: 'ci', subject: 'repo:acme/old:ref:refs/heads/main' }] },
      { id: 'rs-signed', kind: 'service', owner: 'ops', bindings: [{ issuer: 'rs-only', subject: 'svc' }] },
      { id: 'es-signed', kind: 'service', owner: 'ops', bindings: [{ issuer: 'es-ok', subject: 'svc' }] },
      { id: 'agent-1', kind: 'agent', owner: 'ops', public_keys: [agent.jwk] },
      { id: 'old-agent', kind: 'agent', owner: 'ops', status: 'retired', public_keys: [retiredAgent.jwk] },
    ],
    tasks: [{ name: 'read-logs', scopes: ['logs:read'], audience: 'https://logs.example', workloads: ['*'] }],
  });
});
afterAll(async () => {
  await broker.stop();
  await ci.close();
});

const now = () => Math.floor(broker.clock.now().getTime() / 1000);

/** Asks for a grant; on a 401, also returns what the log says about that request. */
async function grant(token: string): Promise<{ status: number; logged: string }> {
  const res = await post(`${broker.url}/v1/grants`, { task: 'read-logs' }, { authorization: `Bearer ${token}` });
  if (res.status === 401) expect(res.body.detail).toBe('The identity token could not be authenticated.');
  const entry = broker.logs.find((l) => l.req_id === res.body.request_id && l.code === 'invalid_token');
  return { status: res.status, logged: String(entry?.detail ?? '') };
}

const signAssertion = (key: AgentKey, iat: number, exp: number) =>
  new SignJWT({ jti: crypto.randomUUID() })
    .setProtectedHeader({ alg: 'ES256', kid: key.jwk.kid! })
    .setIssuer('agent-1')
    .setSubject('agent-1')
    .setAudience(broker.url)
    .setIssuedAt(iat)
    .setExpirationTime(exp)
    .sign(key.key);

describe('identity token age', () => {
  it('applies the clock leeway to the maximum age once, not twice', async () => {
    const within = await grant(await ci.token({ job_workflow_ref: WORKFLOW, exp: now() + 60 }, { iat: now() - (MAX_AGE + LEEWAY - 5) }));
    expect(within.status).toBe(201);
    const beyond = await grant(await ci.token({ job_workflow_ref: WORKFLOW, exp: now() + 60 }, { iat: now() - (MAX_AGE + LEEWAY + 5) }));
    expect(beyond).toEqual({ status: 401, logged: expect.stringMatching(/too far in the past/) });
  });
});

describe('RFC 7523 assertion lifetime', () => {
  it('remembers a jti until the assertion can no longer be accepted', async () => {
    const iat = now();
    const assertion = await signAssertion(agent, iat, iat + 60);
    expect((await grant(assertion)).status).toBe(201);
    const row = await broker.database.db.selectFrom('assertion_jtis').select('expires_at').where('workload_id', '=', 'agent-1').orderBy('expires_at', 'desc').executeTakeFirstOrThrow();
    expect(row.expires_at.getTime()).toBe((iat + 60 + ASSERTION_LEEWAY) * 1000);
  });

  it('refuses an assertion living longer than the maximum assertion age, far-future ones with a 401 too', async () => {
    const before = await broker.database.db.selectFrom('assertion_jtis').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
    for (const lifetime of [MAX_ASSERTION_AGE + 1, 86_400 * 365, 1e13]) {
      const res = await grant(await signAssertion(agent, now(), now() + lifetime));
      expect(res).toEqual({ status: 401, logged: expect.stringMatching(new RegExp(`lifetime .* exceeds ${MAX_ASSERTION_AGE}s`)) });
    }
    expect((await grant(await signAssertion(agent, now(), now() + MAX_ASSERTION_AGE))).status).toBe(201);
    const after = await broker.database.db.selectFrom('assertion_jtis').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
    expect(Number(after.n) - Number(before.n)).toBe(1);
  });
});

describe('workload status', () => {
  it('refuses a retired workload, whether it proves itself through a CI issuer or a registered key', async () => {
    expect(await grant(await ci.token({ sub: 'repo:acme/old:ref:refs/heads/main', repository: 'acme/old' }))).toEqual({ status: 401, logged: 'workload old-pipeline is retired' });
    expect(await grant(await retiredAgent.assertion(broker.url, {}, now()))).toEqual({ status: 401, logged: 'workload old-agent is retired' });
    expect((await grant(await agent.assertion(broker.url, {}, now()))).status).toBe(201);
  });
});

describe('algorithm allow-list', () => {
  it('refuses an ES256 token from an issuer that allows only RS256, though the key is its own', async () => {
    const es256 = (iss: string) => ci.token({ iss, sub: 'svc' }, { alg: 'ES256', kid: 'ec-1', key: ecKey });
    expect(await grant(await es256('https://rs-only.example'))).toEqual({ status: 401, logged: expect.stringMatching(/rs-only: ERR_JOSE_ALG_NOT_ALLOWED/) });
    expect((await grant(await es256('https://es-ok.example'))).status).toBe(201);
  });
});

describe('claim patterns are anchored', () => {
  it('matches the whole claim: a prefix or a suffix added to job_workflow_ref is refused', async () => {
    expect((await grant(await ci.token({ job_workflow_ref: WORKFLOW }))).status).toBe(201);
    expect((await grant(await ci.token({ job_workflow_ref: WORKFLOW.replace('deploy', 'release') }))).status).toBe(201);
    for (const ref of [`evil/${WORKFLOW}`, `${WORKFLOW}-evil`, `${WORKFLOW}\nacme`, 'acme/api/.github/workflows/deploy.yml@refs/heads/main|x']) {
      expect(await grant(await ci.token({ job_workflow_ref: ref }))).toEqual({ status: 401, logged: expect.stringMatching(/no workload binding matches/) });
    }
    expect(await grant(await ci.token({ job_workflow_ref: WORKFLOW, repository: 'acme/api-fork' }))).toEqual({ status: 401, logged: expect.stringMatching(/no workload binding/) });
  });
});

const metric = (name: string, labels: string) => metricValue(broker.url, name, labels);

describe('an identity token presented again', () => {
  it('is checked once and reused after, its claims still checked each time; an assertion is never remembered', async () => {
    const name = 'tessera_identity_signature_checks_total';
    const before = { checked: await metric(name, 'result="checked"'), reused: await metric(name, 'result="reused"') };
    // Near the issuer's maximum age (and its leeway) already, valid for an hour more: its check outlives that age.
    const token = await ci.token({ job_workflow_ref: WORKFLOW, exp: now() + 3600 }, { iat: now() - (MAX_AGE + LEEWAY - 30) });
    expect((await grant(token)).status).toBe(201);
    expect((await grant(token)).status).toBe(201);
    expect((await grant(await agent.assertion(broker.url, {}, now()))).status).toBe(201);
    expect(await metric(name, 'result="checked"')).toBe(before.checked + 1);
    expect(await metric(name, 'result="reused"')).toBe(before.reused + 1);
    // A minute later it is older than that, and refused, from the reused check (the JWKS is still cached).
    broker.clock.advance(60);
    expect(await grant(token)).toEqual({ status: 401, logged: expect.stringMatching(/too far in the past/) });
    expect(await metric(name, 'result="reused"')).toBe(before.reused + 2);
    expect(await metric(name, 'result="checked"')).toBe(before.checked + 1);
  });
});

describe('an identity token presented across a JWKS refetch', () => {
  it('keeps its reused check when the refetched key set is unchanged', async () => {
    const name = 'tessera_identity_signature_checks_total';
    const token = await ci.token({ job_workflow_ref: WORKFLOW, exp: now() + 3600 });
    expect((await grant(token)).status).toBe(201);
    const before = { checked: await metric(name, 'result="checked"'), reused: await metric(name, 'result="reused"'), fetches: ci.jwksFetches };
    // Past the JWKS max age (600 s by default): the next request refetches it, and it has not changed.
    broker.clock.advance(601);
    expect((await grant(token)).status).toBe(201);
    expect(ci.jwksFetches).toBe(before.fetches + 1);
    expect(await metric(name, 'result="reused"')).toBe(before.reused + 1);
    expect(await metric(name, 'result="checked"')).toBe(before.checked);
    // A rotation changes the set: its keys are imported again, and a token checked before is checked again.
    const fresh = await ci.token({ job_workflow_ref: WORKFLOW, exp: now() + 3600 });
    expect((await grant(fresh)).status).toBe(201);
    await ci.rotate();
    broker.clock.advance(601);
    expect((await grant(fresh)).status).toBe(201);
    expect(ci.jwksFetches).toBe(before.fetches + 2);
    expect(await metric(name, 'result="checked"')).toBe(before.checked + 2);
  });
});
