import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalJWKSet, decodeJwt, jwtVerify, SignJWT, generateKeyPair, type JSONWebKeySet } from 'jose';
import { startTestBroker, post, TEST_ADMIN_KEY, type TestBroker } from './support/broker.js';
import { startFakeIssuer, type FakeIssuer } from './support/fake-issuer.js';
import { agentKey, testConfig, type AgentKey } from './support/fixtures.js';

let broker: TestBroker;
let ci: FakeIssuer;
let agent: AgentKey;

const grant = (token: string, body: unknown) => post(`${broker.url}/v1/grants`, body, { authorization: `Bearer ${token}` });
const deploy = { task: 'deploy-prod', params: { service: 'api' }, purpose: 'release 1.2.3' };

beforeAll(async () => {
  ci = await startFakeIssuer({ now: () => broker.clock.now() });
  agent = await agentKey();
  broker = await startTestBroker(testConfig(ci, agent.jwk));
});
afterAll(async () => {
  await broker.stop();
  await ci.close();
});

describe('POST /v1/grants', () => {
  it('mints an RFC 9068 token for a CI workload, verifiable through JWKS, after committing its grant', async () => {
    const res = await grant(await ci.token(), deploy);
    expect(res.status).toBe(201);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const jwks = (await (await fetch(`${broker.url}/.well-known/jwks.json`)).json()) as JSONWebKeySet;
    const { payload, protectedHeader } = await jwtVerify(res.body.access_token, createLocalJWKSet(jwks), {
      issuer: broker.url,
      audience: 'https://deploy.example',
      typ: 'at+jwt',
      currentDate: broker.clock.now(),
    });
    expect(protectedHeader).toMatchObject({ alg: 'ES256', typ: 'at+jwt', kid: broker.deps.keys.currentKid });
    expect(payload).toMatchObject({
      sub: 'api-deploy',
      client_id: 'api-deploy',
      scope: 'deploy:write deploy:read',
      task: 'deploy-prod',
      jti: res.body.grant_id,
      authorization_details: [{ type: 'tessera_task', task: 'deploy-prod', params: { service: 'api' } }],
    });
    expect(payload.exp! - payload.iat!).toBe(300);
    const row = await broker.database.db.selectFrom('grants').selectAll().where('id', '=', res.body.grant_id).executeTakeFirstOrThrow();
    // No signal type is registered here: nothing can make this grant due, so the sweep never reads it.
    expect(row).toMatchObject({ status: 'active', workload_id: 'api-deploy', purpose: 'release 1.2.3', params: { service: 'api' }, watches_signals: false });
    expect(JSON.stringify(row)).not.toContain(res.body.access_token);
    expect(row.token_sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('publishes only public key members in JWKS', async () => {
    const jwks = (await (await fetch(`${broker.url}/.well-known/jwks.json`)).json()) as { keys: Record<string, unknown>[] };
    expect(jwks.keys.length).toBeGreaterThan(0);
    for (const k of jwks.keys) expect(Object.keys(k).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
  });

  it('honours a shorter requested TTL and refuses one above the task maximum', async () => {
    const ok = await grant(await ci.token(), { ...deploy, ttl_seconds: 60 });
    expect(ok.body.expires_in).toBe(60);
    const tooLong = await grant(await ci.token(), { ...deploy, ttl_seconds: 901 });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.errors).toEqual([{ field: 'ttl_seconds', reason: 'at most 900 for task deploy-prod' }]);
  });

  it('rejects bad parameters with 400 naming the field, and writes nothing', async () => {
    const before = await countGrants();
    const bad = await grant(await ci.token(), { task: 'deploy-prod', params: { service: 'db', replicas: 2.5 } });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toContain('application/problem+json');
    expect(bad.body.errors.map((e: { field: string }) => e.field).sort()).toEqual(['params.replicas', 'params.service']);
    const extra = await grant(await ci.token(), { task: 'deploy-prod', params: { service: 'api', force: true } });
    expect(extra.status).toBe(400);
    expect(extra.body.errors[0].field).toBe('params');
    const unknownTask = await grant(await ci.token(), { task: 'drop-tables' });
    expect(unknownTask.body.errors).toEqual([{ field: 'task', reason: 'unknown task "drop-tables"' }]);
    const notJson = await post(`${broker.url}/v1/grants`, '{"task":', { authorization: `Bearer ${await ci.token()}` });
    expect(notJson.status).toBe(400);
    const huge = await grant(await ci.token(), { task: 'deploy-prod', purpose: 'x'.repeat(70_000) });
    expect(huge.status).toBe(413);
    expect(await countGrants()).toBe(before);
  });

  it('denies a task the workload may not request (403)', async () => {
    const res = await grant(await agent.assertion(broker.url, {}, now()), deploy);
    expect(res.status).toBe(403);
    expect(res.body.reasons).toEqual(['workload agent-1 may not request task deploy-prod']);
  });

  it('accepts an identity token issued slightly in the future (clock leeway)', async () => {
    const iat = Math.floor(broker.clock.now().getTime() / 1000) + 30;
    expect((await grant(await ci.token({}, { iat }), deploy)).status).toBe(201);
  });
});

describe('identity rejections: a generic 401 to the client, the reason in the log', () => {
  const cases: Array<[string, () => Promise<string>, RegExp]> = [
    ['alg none', async () => `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ iss: ci.url, sub: 'x', aud: 'tessera' })}.`, /algorithm none/],
    ['HS256 signed with the public key (alg confusion)', async () => hsConfusion(), /algorithm HS256/],
    ['wrong audience', () => ci.token({ aud: 'someone-else' }), /aud/],
    ['unknown issuer', () => ci.token({ iss: 'https://evil.example' }), /no trusted issuer/],
    ['expired', () => ci.token({ exp: now() - 120 }), /exp/],
    ['not yet valid beyond leeway', () => ci.token({ nbf: now() + 600, iat: now() + 600, exp: now() + 900 }), /nbf|iat/],
    ['too old', () => ci.token({ iat: now() - 3600, exp: now() + 300 }), /maxTokenAge|too far in the past|iat/],
    ['unknown kid', () => ci.token({}, { kid: 'nope' }), /no applicable key|JWKSNoMatchingKey/i],
    ['bad signature', async () => tamper(await ci.token()), /signature/],
    ['broker-issued token used as identity', async () => (await grant(await ci.token(), deploy)).body.access_token, /broker-issued/],
    ['jku header', () => ci.token({}, { header: { jku: 'https://evil.example/jwks' } }), /"jku"/],
    ['x5u header', () => ci.token({}, { header: { x5u: 'https://evil.example/cert' } }), /"x5u"/],
    ['jwk header', () => ci.token({}, { header: { jwk: { kty: 'EC' } } }), /"jwk"/],
    ['x5c header', () => ci.token({}, { header: { x5c: ['MIIBszCCAVmgAwIBAgIUYw'] } }), /"x5c"/],
    ['binding mismatch (other branch)', () => ci.token({ ref: 'refs/heads/feature' }), /no workload binding/],
    ['garbage', async () => 'not-a-jwt', /compact JWS/],
  ];
  for (const [name, make, logged] of cases) {
    it(`rejects ${name}`, async () => {
      const token = await make();
      const before = await countGrants();
      const res = await grant(token, deploy);
      expect(res.status).toBe(401);
      expect(res.body).toMatchObject({ code: 'invalid_token', detail: 'The identity token could not be authenticated.' });
      const entry = broker.logs.find((l) => l.req_id === res.body.request_id && l.code === 'invalid_token');
      expect(String(entry?.detail)).toMatch(logged);
      expect(await countGrants()).toBe(before);
    });
  }

  it('refuses a suspended workload', async () => {
    await broker.database.db.updateTable('workloads').set({ status: 'suspended', status_reason: 'incident 42' }).where('id', '=', 'api-deploy').execute();
    await broker.database.db.updateTable('registry_epoch').set({ epoch: 1000 }).execute();
    try {
      // Even before this replica reloads its registry, the conditional insert refuses the grant.
      const early = await grant(await ci.token(), deploy);
      expect(early.status).toBeGreaterThanOrEqual(401);
      expect(early.status).toBeLessThanOrEqual(403);
      await broker.deps.registry.refreshIfChanged();
      const res = await grant(await ci.token(), deploy);
      expect(res.status).toBe(401);
    } finally {
      await broker.database.db.updateTable('workloads').set({ status: 'active', status_reason: null }).where('id', '=', 'api-deploy').execute();
      await broker.database.db.updateTable('registry_epoch').set({ epoch: 1001 }).execute();
      await broker.deps.registry.refreshIfChanged();
    }
  });
});

describe('RFC 7523 client assertions (registered workload keys)', () => {
  it('mints for a valid assertion and refuses its replay', async () => {
    const assertion = await agent.assertion(broker.url, {}, now());
    const first = await grant(assertion, { task: 'refund-payment', params: { amount: 42.5 } });
    expect(first.status).toBe(201);
    expect(decodeJwt(first.body.access_token)).toMatchObject({ sub: 'agent-1', task: 'refund-payment' });
    const replay = await grant(assertion, { task: 'refund-payment', params: { amount: 42.5 } });
    expect(replay.status).toBe(401);
  });

  it('refuses an assertion for another audience or signed by an unregistered key', async () => {
    expect((await grant(await agent.assertion('https://elsewhere.example', {}, now()), { task: 'refund-payment', params: { amount: 1 } })).status).toBe(401);
    const stranger = await agentKey();
    expect((await grant(await stranger.assertion(broker.url, {}, now()), { task: 'refund-payment', params: { amount: 1 } })).status).toBe(401);
  });
});

describe('JWKS cache', () => {
  it('fetches the issuer JWKS once when a burst of tokens carries a new kid', async () => {
    await grant(await ci.token(), deploy); // warm the cache
    const kid = await ci.rotate();
    broker.clock.advance(60); // past the refetch cooldown
    const before = ci.jwksFetches;
    const tokens = await Promise.all(Array.from({ length: 20 }, () => ci.token({}, { kid })));
    const results = await Promise.all(tokens.map((t) => grant(t, deploy)));
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(201));
    expect(ci.jwksFetches - before).toBe(1);
  });
});

describe('POST /v1/grants/{id}/complete', () => {
  it('lets the holder end its grant with the grant token, once; others get 404', async () => {
    const minted = await grant(await ci.token(), deploy);
    const url = `${broker.url}/v1/grants/${minted.body.grant_id}/complete`;
    const done = await post(url, {}, { authorization: `Bearer ${minted.body.access_token}` });
    expect(done.status).toBe(200);
    expect(done.body.status).toBe('completed');
    const again = await post(url, {}, { authorization: `Bearer ${minted.body.access_token}` });
    expect(again.body.status).toBe('completed');
    const other = await post(url, {}, { authorization: `Bearer ${await agent.assertion(broker.url, {}, now())}` });
    expect(other.status).toBe(404);
    const missing = await post(`${broker.url}/v1/grants/not-a-uuid/complete`, {}, { authorization: `Bearer ${minted.body.access_token}` });
    expect(missing.status).toBe(404);
  });

  it('accepts a fresh identity token of the same workload', async () => {
    const minted = await grant(await ci.token(), deploy);
    const done = await post(`${broker.url}/v1/grants/${minted.body.grant_id}/complete`, {}, { authorization: `Bearer ${await ci.token()}` });
    expect(done.body.status).toBe('completed');
  });
});

describe('POST /oauth2/token (RFC 8693 token exchange)', () => {
  const exchange = (form: Record<string, string>) => post(`${broker.url}/oauth2/token`, form, {}, true);
  const base = async () => ({
    grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
    subject_token: await ci.token(),
    subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
  });

  it('exchanges an identity token for a down-scoped access token', async () => {
    const res = await exchange({ ...(await base()), task: 'deploy-prod', task_params: '{"service":"worker"}', scope: 'deploy:read', audience: 'https://deploy.example' });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.body).toMatchObject({ issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', token_type: 'Bearer', scope: 'deploy:read' });
    expect(decodeJwt(res.body.access_token).scope).toBe('deploy:read');
  });

  it('takes the task from RFC 9396 authorization_details', async () => {
    const details = JSON.stringify([{ type: 'tessera_task', task: 'deploy-prod', params: { service: 'api' } }]);
    const res = await exchange({ ...(await base()), authorization_details: details });
    expect(res.status).toBe(200);
  });

  it('answers RFC 6749 error objects', async () => {
    expect((await exchange({ grant_type: 'client_credentials' })).body.error).toBe('unsupported_grant_type');
    expect((await exchange({ ...(await base()), task: 'deploy-prod', task_params: '{"service":"api"}', scope: 'admin:all' })).body.error).toBe('invalid_scope');
    expect((await exchange({ ...(await base()), task: 'deploy-prod', task_params: '{"service":"api"}', audience: 'https://other' })).body.error).toBe('invalid_target');
    const bad = await exchange({ ...(await base()), subject_token: 'x.y.z', task: 'deploy-prod' });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('cache-control')).toBe('no-store');
    expect(bad.body.error).toBe('invalid_grant');
    const missing = await exchange({ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange' });
    expect(missing.body.error).toBe('invalid_request');
    expect(missing.body.error_description).toMatch(/subject_token/);
  });
});

describe('well-known and operations', () => {
  it('serves RFC 8414 metadata, health and readiness', async () => {
    const meta = await (await fetch(`${broker.url}/.well-known/oauth-authorization-server`)).json();
    expect(meta).toMatchObject({
      issuer: broker.url,
      token_endpoint: `${broker.url}/oauth2/token`,
      jwks_uri: `${broker.url}/.well-known/jwks.json`,
      introspection_endpoint: `${broker.url}/oauth2/introspect`,
      revocation_endpoint: `${broker.url}/oauth2/revoke`,
      scopes_supported: ['deploy:read', 'deploy:write', 'payments:refund'],
    });
    expect((await fetch(`${broker.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${broker.url}/readyz`)).status).toBe(200);
    expect((await fetch(`${broker.url}/nope`)).status).toBe(404);
  });

  it('echoes a well-formed request id and never logs tokens or authorization headers', async () => {
    const token = await ci.token();
    const res = await fetch(`${broker.url}/v1/grants`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'x-request-id': 'req-123' },
      body: JSON.stringify(deploy),
    });
    expect(res.headers.get('x-request-id')).toBe('req-123');
    const body = (await res.json()) as { access_token: string };
    const all = JSON.stringify(broker.logs);
    expect(all).not.toContain(token.split('.')[2]);
    expect(all).not.toContain(body.access_token.split('.')[2]);
    expect(all).not.toMatch(/eyJ[\w-]+\.eyJ[\w-]+\./);
  });
});

describe('admin configuration apply', () => {
  it('needs an operator key: workload tokens get 401; a bad document gets 400 naming the field', async () => {
    const url = `${broker.url}/v1/admin/config`;
    expect((await post(url, {}, { authorization: `Bearer ${await ci.token()}` })).status).toBe(401);
    const bad = await post(url, { tasks: [{ name: 'x', scopes: [], audience: 'a', workloads: ['w'], colour: 'red' }] }, { authorization: `Bearer ${TEST_ADMIN_KEY}` });
    expect(bad.status).toBe(400);
    expect(bad.body.errors.map((e: { field: string }) => e.field)).toEqual(expect.arrayContaining(['tasks.0.scopes', 'tasks.0']));
    const badPattern = { tasks: [{ name: 'x', scopes: ['a'], audience: 'a', workloads: ['w'], params: { p: { type: 'string', pattern: '(' } } }] };
    const pattern = await post(url, badPattern, { authorization: `Bearer ${TEST_ADMIN_KEY}` });
    expect(pattern.status).toBe(400);
    expect(pattern.body.errors).toEqual([{ field: 'tasks.0.params.p.pattern', reason: 'not a valid regular expression' }]);
  });

  it('refuses private, symmetric and malformed JWKs with 400 naming the member, and stores nothing', async () => {
    const url = `${broker.url}/v1/admin/config`;
    const auth = { authorization: `Bearer ${TEST_ADMIN_KEY}` };
    const versions = async () => (await broker.database.db.selectFrom('config_versions').select('document').execute()).map((r) => JSON.stringify(r.document));
    const before = await versions();
    const config = testConfig(ci, agent.jwk);
    const withAgentKey = (key: unknown) => ({ ...config, workloads: config.workloads.map((w) => (w.id === 'agent-1' ? { ...w, public_keys: [key] } : w)) });
    const withInlineKeys = (keys: unknown[]) => ({ ...config, issuers: [{ id: 'inline', issuer: 'https://inline.example', jwks: { keys }, audiences: ['tessera'] }, ...config.issuers] });
    const cases: Array<[unknown, Array<{ field: string; reason: RegExp }>]> = [
      [withAgentKey(agent.privateJwk), [{ field: 'workloads.2.public_keys.0.d', reason: /private key material: configure the public key only/ }]],
      [withInlineKeys([{ kty: 'oct', k: 'c2VjcmV0', alg: 'HS256' }]), [{ field: 'issuers.0.jwks.keys.0.k', reason: /symmetric secret/ }]],
      [withInlineKeys([{ ...agent.jwk, y: agent.jwk.x }]), [{ field: 'issuers.0.jwks.keys.0', reason: /not a valid EC public key/ }]],
      [withInlineKeys([{ kty: 'RSA', e: 'AQAB' }]), [{ field: 'issuers.0.jwks.keys.0.n', reason: /required for kty RSA/ }]],
      [withAgentKey({ ...agent.jwk, alg: 'RS256' }), [{ field: 'workloads.2.public_keys.0.alg', reason: /ES256, ES384, ES512/ }]],
    ];
    for (const [doc, expected] of cases) {
      const res = await post(url, doc, auth);
      expect(res.status).toBe(400);
      expect(res.body.errors).toEqual(expected.map((e) => ({ field: e.field, reason: expect.stringMatching(e.reason) })));
    }
    expect(await versions()).toEqual(before);
    expect(JSON.stringify(broker.logs)).not.toContain(String(agent.privateJwk.d));
  });
});

const now = () => Math.floor(broker.clock.now().getTime() / 1000);
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const tamper = (t: string) => {
  const [h, p, s] = t.split('.');
  return `${h}.${p}.${s!.slice(0, -4)}${s!.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`;
};
async function hsConfusion(): Promise<string> {
  const jwks = (await (await fetch(ci.jwksUri)).json()) as { keys: Array<Record<string, string>> };
  const secret = new TextEncoder().encode(JSON.stringify(jwks.keys[0]));
  return new SignJWT({ sub: 'repo:acme/api', aud: 'tessera', repository: 'acme/api', ref: 'refs/heads/main' })
    .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
    .setIssuer(ci.url)
    .setIssuedAt(now())
    .setExpirationTime(now() + 60)
    .sign(secret);
}
async function countGrants(): Promise<number> {
  const r = await broker.database.db.selectFrom('grants').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
  return Number(r.n);
}
void generateKeyPair;
